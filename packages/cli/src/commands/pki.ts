/**
 * `magrathea pki init`: a site CA and certificates for a test cluster, made with `openssl`:
 * one server certificate per node (SANs: the node name, localhost, 127.0.0.1 and any --ip)
 * and one client certificate per identity (CN = the identity), all signed by the CA. Prints
 * the `listen.tls` block for the daemons' config and the filter's `tls` block. Keys are 0600.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { ROLES } from '@magrathea/common';
import type { Role } from '@magrathea/common';
import { CliError, EXIT } from '../client';
import type { Io } from '../output';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('openssl', args, { cwd }, (err, _out, stderr) =>
      err
        ? reject(
            new CliError(
              (err as NodeJS.ErrnoException).code === 'ENOENT'
                ? 'openssl is not installed (apt-get install openssl)'
                : `openssl ${args[0] ?? ''} failed: ${stderr.trim()}`,
              EXIT.error,
            ),
          )
        : resolve(),
    ),
  );
}

interface PkiOptions {
  out: string;
  node: string[];
  client: string[];
  ip: string[];
  days: string;
  force?: boolean;
}

export interface PkiResult {
  readonly dir: string;
  readonly nodes: readonly string[];
  readonly clients: readonly { identity: string; role: Role }[];
}

export async function pkiInit(o: PkiOptions): Promise<PkiResult> {
  const days = Number(o.days);
  if (!Number.isInteger(days) || days < 1 || days > 36500) throw new CliError('--days must be 1 to 36500', EXIT.usage);
  if (o.node.length === 0) throw new CliError('give at least one --node NAME', EXIT.usage);
  for (const n of o.node) if (!NAME.test(n)) throw new CliError(`--node ${n}: not a host name`, EXIT.usage);
  for (const ip of o.ip)
    if (!/^[0-9.]+$|^[0-9a-f:]+$/i.test(ip)) throw new CliError(`--ip ${ip}: not an IP address`, EXIT.usage);
  const clients = o.client.map((spec) => {
    const [identity, role] = spec.split('=');
    if (!identity || !NAME.test(identity) || !role || !(ROLES as readonly string[]).includes(role))
      throw new CliError(`--client ${spec}: expected IDENTITY=ROLE with ROLE one of ${ROLES.join(', ')}`, EXIT.usage);
    return { identity, role: role as Role };
  });
  const dir = path.resolve(o.out);
  if (fs.existsSync(path.join(dir, 'ca.pem')) && !o.force)
    throw new CliError(`${dir}/ca.pem exists; use --force to replace the whole PKI`, EXIT.usage);
  fs.mkdirSync(path.join(dir, 'nodes'), { recursive: true, mode: 0o700 });
  fs.mkdirSync(path.join(dir, 'clients'), { recursive: true, mode: 0o700 });
  const key = (file: string): Promise<void> =>
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], dir).then(() =>
      fs.chmodSync(path.join(dir, file), 0o600),
    );
  await key('ca.key');
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-sha256',
      '-days',
      String(days),
      '-subj',
      '/CN=magrathea-site-ca',
      '-out',
      'ca.pem',
    ],
    dir,
  );
  const sign = async (base: string, cn: string, ext: string): Promise<void> => {
    await key(`${base}.key`);
    await openssl(['req', '-new', '-key', `${base}.key`, '-subj', `/CN=${cn}`, '-out', `${base}.csr`], dir);
    fs.writeFileSync(path.join(dir, `${base}.ext`), ext);
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        `${base}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        String(days),
        '-sha256',
        '-extfile',
        `${base}.ext`,
        '-out',
        `${base}.pem`,
      ],
      dir,
    );
    fs.rmSync(path.join(dir, `${base}.csr`));
    fs.rmSync(path.join(dir, `${base}.ext`));
  };
  for (const n of o.node) {
    const san = [`DNS:${n}`, 'DNS:localhost', 'IP:127.0.0.1', ...o.ip.map((ip) => `IP:${ip}`)].join(',');
    await sign(`nodes/${n}`, n, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n`);
  }
  for (const c of clients)
    await sign(`clients/${c.identity}`, c.identity, 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n');
  fs.rmSync(path.join(dir, 'ca.srl'), { force: true });
  return { dir, nodes: o.node, clients };
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function addPkiCommands(program: Command, io: Io): void {
  const pki = program.command('pki').description('certificates for mTLS between the CLI, the filter and the daemons');
  pki
    .command('init')
    .description('create a site CA, a server certificate per node and a client certificate per identity (openssl)')
    .requiredOption('--out <dir>', 'directory for ca.pem, nodes/NODE.{pem,key}, clients/ID.{pem,key}')
    .option('--node <name>', 'a node (repeat)', collect, [])
    .option('--client <identity=role>', `a client identity and its role (${ROLES.join(', ')}); repeat`, collect, [])
    .option('--ip <address>', 'an extra IP address for every node certificate (repeat)', collect, [])
    .option('--days <n>', 'validity in days', '365')
    .option('--force', 'replace an existing PKI in --out')
    .option('--json', 'print the files made as JSON')
    .action(async (o: PkiOptions & { json?: boolean }) => {
      const r = await pkiInit(o);
      if (o.json) {
        io.out(
          JSON.stringify({
            ca: `${r.dir}/ca.pem`,
            ca_key: `${r.dir}/ca.key`,
            nodes: r.nodes.map((n) => ({ name: n, cert: `${r.dir}/nodes/${n}.pem`, key: `${r.dir}/nodes/${n}.key` })),
            clients: r.clients.map((c) => ({
              identity: c.identity,
              role: c.role,
              cert: `${r.dir}/clients/${c.identity}.pem`,
              key: `${r.dir}/clients/${c.identity}.key`,
            })),
          }),
        );
        return;
      }
      io.out(`site CA: ${r.dir}/ca.pem (keep ${r.dir}/ca.key offline)`);
      io.out('');
      io.out('# magrathead config on node NODE:');
      io.out('listen:');
      io.out('  tcp: 0.0.0.0:5678');
      io.out('  tls:');
      io.out(`    ca: ${r.dir}/ca.pem`);
      io.out(`    cert: ${r.dir}/nodes/NODE.pem`);
      io.out(`    key: ${r.dir}/nodes/NODE.key`);
      io.out('    clients:');
      for (const c of r.clients) io.out(`      - { identity: ${c.identity}, role: ${c.role} }`);
      const f = r.clients.find((c) => c.role === 'filter');
      if (f) {
        io.out('');
        io.out('# magrathea-filter config:');
        io.out(
          `tls: { ca: ${r.dir}/ca.pem, cert: ${r.dir}/clients/${f.identity}.pem, key: ${r.dir}/clients/${f.identity}.key }`,
        );
      }
      io.out('');
      io.out('# the CLI (an operator identity):');
      io.out(
        `export MAGRATHEA_TLS_CA=${r.dir}/ca.pem MAGRATHEA_TLS_CERT=${r.dir}/clients/ID.pem MAGRATHEA_TLS_KEY=${r.dir}/clients/ID.key`,
      );
    });
}

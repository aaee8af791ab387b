# Magrathea for PBS: one hook script for every PBS event it handles.
#
# Installed (by `magrathea pbs install`) as several PBS hooks that share this file:
#   magrathea_queuejob  (server, queuejob,modifyjob,movejob,resvsub)
#                                                    classify and route; guard the magrathea request
#                                                    against qalter/qmove/pbs_rsub; no network calls
#   magrathea_begin     (mom, execjob_begin)         StartJob at the node daemon; fail safe
#   magrathea_end       (mom, execjob_end)           EndJob, with retries; never blocks cleanup
#   magrathea_periodic  (mom, exechost_startup,exechost_periodic; only when the domains publish
#                                                    their own state, i.e. without magrathea-filter)
#   magrathea_runjob    (server, runjob; optional)   admission check at magrathea-filter;
#                                                    accepts when the filter cannot be reached
#
# Standard library only (PBS's embedded Python). Every network call has a timeout well
# under the hook's alarm. Site settings come from the hook's config file (PBS_HOOK_CONFIG_FILE,
# written by the installer); the per-domain settings (daemon URL, token) come from a small
# JSON file inside each domain, because PBS pushes the same hook config to every mom.
import json
import os
import re
import sys
import time
import traceback

import pbs

try:  # Python 3
    from urllib import request as urlrequest
    from urllib import error as urlerror
except ImportError:  # pragma: no cover - PBS has shipped Python 3 since 2020
    urlrequest = None
    urlerror = None

PREFIX = "magrathea: "
MAX_RESPONSE = 65536


class HookConfigError(Exception):
    """The hook or domain configuration is missing or invalid."""


class DaemonUnavailable(Exception):
    """The node daemon could not be reached, timed out, or answered something that is not ours."""


def log(level, msg):
    pbs.logmsg(level, PREFIX + msg)


# ---------------------------------------------------------------- configuration

SITE_DEFAULTS = {
    "priority_queue": "iprio",
    "priority_queues": [],
    "non_preemptible_queues": [],
    "domain_config": "/etc/magrathea/domain.json",
    "timeout": 3.0,
    "end_retries": 3,
    "publish_from_mom": True,
    "filter_admit_url": None,
    "admit_timeout": 1.0,
    "priority_queue_interactive_only": True,
    "images": [],
}

# The magrathea resource named in a select chunk or a resource list (not magrathea_image etc.).
MAGRATHEA_IN_SELECT = re.compile(r"(^|[:+])\s*magrathea\s*=", re.IGNORECASE)
IMAGE_IN_SELECT = re.compile(r"(?:^|[:+])\s*magrathea_image\s*=\s*([^:+\s]*)", re.IGNORECASE)


def _read_json(path, what):
    try:
        with open(path, "r") as f:
            data = json.load(f)
    except (IOError, OSError) as ex:
        raise HookConfigError("%s %s cannot be read: %s" % (what, path, ex))
    except ValueError as ex:
        raise HookConfigError("%s %s is not valid JSON: %s" % (what, path, ex))
    if not isinstance(data, dict):
        raise HookConfigError("%s %s must hold a JSON object" % (what, path))
    return data


def site_config():
    path = os.environ.get("PBS_HOOK_CONFIG_FILE") or getattr(pbs, "hook_config_filename", None)
    cfg = dict(SITE_DEFAULTS)
    if path:
        cfg.update(_read_json(path, "hook config"))
    if not isinstance(cfg["priority_queue"], str) or not cfg["priority_queue"]:
        raise HookConfigError("hook config: priority_queue must be a queue name")
    for key in ("priority_queues", "non_preemptible_queues"):
        if not isinstance(cfg[key], list) or not all(isinstance(q, str) for q in cfg[key]):
            raise HookConfigError("hook config: %s must be a list of queue names" % key)
    try:
        cfg["timeout"] = float(cfg["timeout"])
        cfg["end_retries"] = int(cfg["end_retries"])
    except (TypeError, ValueError):
        raise HookConfigError("hook config: timeout and end_retries must be numbers")
    if not (0 < cfg["timeout"] <= 20):
        raise HookConfigError("hook config: timeout must be between 0 and 20 seconds")
    if not (1 <= cfg["end_retries"] <= 10):
        raise HookConfigError("hook config: end_retries must be between 1 and 10")
    url = cfg["filter_admit_url"]
    if url is not None and (not isinstance(url, str) or not (url.startswith("http://") or url.startswith("https://"))):
        raise HookConfigError("hook config: filter_admit_url must be an http(s) URL or null")
    try:
        cfg["admit_timeout"] = float(cfg["admit_timeout"])
    except (TypeError, ValueError):
        raise HookConfigError("hook config: admit_timeout must be a number")
    if not (0 < cfg["admit_timeout"] <= 5):
        raise HookConfigError("hook config: admit_timeout must be between 0 and 5 seconds (runjob blocks pbs_server)")
    if not isinstance(cfg["images"], list) or not all(isinstance(i, str) for i in cfg["images"]):
        raise HookConfigError("hook config: images must be a list of image names")
    return cfg


def domain_config(site):
    d = _read_json(site["domain_config"], "domain config")
    url = d.get("daemon_url")
    if not isinstance(url, str) or not (url.startswith("http://") or url.startswith("https://")):
        raise HookConfigError("domain config: daemon_url must be an http(s) URL")
    domain = d.get("domain")
    if not isinstance(domain, str) or not domain:
        raise HookConfigError("domain config: domain must name this domain")
    token = d.get("token")
    if token is None and isinstance(d.get("token_file"), str):
        try:
            with open(d["token_file"], "r") as f:
                token = f.read().strip()
        except (IOError, OSError) as ex:
            raise HookConfigError("token file %s cannot be read: %s" % (d["token_file"], ex))
    if not isinstance(token, str) or not token:
        raise HookConfigError("domain config: token or token_file is required")
    return {"url": url.rstrip("/"), "domain": domain, "token": token}


# ---------------------------------------------------------------- node daemon client

def call_daemon(dom, method, path, body, timeout):
    """Returns (http_status, json_object). Raises DaemonUnavailable for anything that is not
    a JSON object from the daemon (refused connection, timeout, garbage, proxy error page)."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {"Authorization": "Bearer " + dom["token"], "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urlrequest.Request(dom["url"] + path, data=data, headers=headers, method=method)
    try:
        try:
            resp = urlrequest.urlopen(req, timeout=timeout)
            status, text = resp.status, resp.read(MAX_RESPONSE)
        except urlerror.HTTPError as ex:
            status, text = ex.code, ex.read(MAX_RESPONSE)
    except Exception as ex:  # URLError, socket.timeout, ConnectionError, http.client errors
        raise DaemonUnavailable("%s %s: %s" % (method, dom["url"] + path, ex))
    try:
        obj = json.loads(text.decode("utf-8"))
    except Exception:
        raise DaemonUnavailable("%s answered HTTP %s with something that is not JSON" % (dom["url"], status))
    if not isinstance(obj, dict) or not isinstance(obj.get("ok"), bool):
        raise DaemonUnavailable("%s answered HTTP %s with an unexpected JSON body" % (dom["url"], status))
    return status, obj


# ---------------------------------------------------------------- helpers

def is_local(name):
    """True for this mom's own vnode (names may be short or fully qualified)."""
    me = pbs.get_local_nodename()
    return name == me or name.split(".")[0] == me.split(".")[0]


def local_vnode(e):
    """This mom's own vnode in the event's vnode_list. A real vnode_list also holds the vnodes of
    the job's other moms (sisters), which this mom may not update: never fall back to one of them."""
    vl = e.vnode_list
    for name in vl.keys():
        if is_local(name):
            return vl[name]
    return None


def publish(site, vn, status, comment=None):
    """Writes what the domain accepts onto its vnode (string_array as a comma-joined str). Only
    when the domains publish their own state: with magrathea-filter deployed the filter is the one
    writer of the vnode's values and comment."""
    if vn is None or not site["publish_from_mom"]:
        return
    if isinstance(status, dict) and status.get("magrathea"):
        vn.resources_available["magrathea"] = str(status["magrathea"])
        vn.resources_available["magrathea_state"] = str(status.get("state", "unknown"))
        if isinstance(status.get("rank"), (int, float)):
            vn.resources_available["magrathea_rank"] = float(status["rank"])
        if isinstance(status.get("image"), str) and status["image"]:
            vn.resources_available["magrathea_image"] = status["image"]
    if comment is None and isinstance(status, dict):
        comment = status.get("comment")
    if comment:
        vn.comment = comment[:80]


def take_out(site, vn, comment, status=None):
    """A start was refused or could not be checked: the vnode accepts nothing until its publisher
    (magrathea-filter, or this domain's periodic hook) writes it again. PBS applies the vnode changes
    of an execjob_begin hook even when it rejects, so the scheduler does not pick the same vnode again
    at once (it would, about 20 times within seconds, and then hold the job)."""
    if vn is None:
        return
    publish(site, vn, status, comment)  # the domain's real state, when the domains publish it
    vn.resources_available["magrathea"] = "none"


def res(rl, name):
    """A resource of a resource list, or None. The real pbs module raises AttributeError for a name
    the server does not define (e.g. magrathea_image on a site where it was deleted)."""
    try:
        return rl[name]
    except (AttributeError, KeyError):
        return None


def queue_name(job):
    q = job.queue
    if q is None:
        return None
    name = getattr(q, "name", None)
    return name if name else (str(q) or None)


def exec_chunks(job):
    """[(vnode, ncpus)] of exec_vnode, e.g. "(a:ncpus=1)+(b:ncpus=2:mem=1gb)". A chunk group
    "(a:ncpus=1+b:ncpus=1)" is split too."""
    out = []
    for part in str(job.exec_vnode or "").replace("(", "").replace(")", "").split("+"):
        fields = part.strip().split(":")
        if not fields or not fields[0]:
            continue
        ncpus = 0
        for f in fields[1:]:
            if f.startswith("ncpus="):
                try:
                    ncpus = int(f.split("=", 1)[1])
                except ValueError:
                    ncpus = 0
        out.append((fields[0], ncpus))
    return out


def node_count(job):
    """Hosts the job runs on. On a real mom, execjob_begin has exec_vnode but neither
    Resource_List["nodect"] nor exec_host: count the distinct vnodes of exec_vnode first (every
    Magrathea domain is its own PBS host)."""
    chunks = exec_chunks(job)
    if chunks:
        return len(set(v for (v, _) in chunks))
    nodect = res(job.Resource_List, "nodect")
    if nodect is not None:
        try:
            return int(nodect)
        except (TypeError, ValueError):
            pass
    eh = job.exec_host
    if eh:
        return len(set(part.split("/")[0] for part in str(eh).split("+") if part))
    return 1


def local_cpus(e):
    """CPUs of this job on this mom's own vnode, from exec_vnode (a real vnode_list also lists the
    sisters' vnodes). Without exec_vnode: the job's ncpus."""
    total = sum(n for (v, n) in exec_chunks(e.job) if is_local(v))
    if total <= 0 and not exec_chunks(e.job):
        try:
            total = int(res(e.job.Resource_List, "ncpus") or 1)
        except (TypeError, ValueError):
            total = 1
    return max(1, min(total, 4096))


# ---------------------------------------------------------------- events

def names_magrathea(rl):
    """True when a resource list or its select asks for the magrathea resource itself."""
    sel = res(rl, "select")
    return res(rl, "magrathea") is not None or (sel is not None and MAGRATHEA_IN_SELECT.search(str(sel)) is not None)


def requested_images(rl):
    sel = res(rl, "select")
    found = IMAGE_IN_SELECT.findall(str(sel)) if sel is not None else []
    if res(rl, "magrathea_image") is not None:
        found.append(str(res(rl, "magrathea_image")))
    return found


def check_images(e, site, rl):
    known = site["images"]
    for image in requested_images(rl):
        if known and image not in known:
            e.reject("unknown image %s: this site runs %s" % (image or "(empty)", ", ".join(known)))


def _acl_match(entry, user, host):
    u, _, h = str(entry).strip().partition("@")
    return (u in ("*", user)) and (not h or h == "*" or h == host or (h.startswith("*.") and host.endswith(h[1:])))


def privileged(e):
    """PBS itself, or a PBS manager or operator (server attributes managers/operators)."""
    who = e.requestor or ""
    if who in ("PBS_Server", "Scheduler", "pbs_mom", "root"):
        return True
    host = e.requestor_host or ""
    srv = pbs.server()
    for attr in ("managers", "operators"):
        acl = getattr(srv, attr, None)
        if acl and any(_acl_match(x, who, host) for x in str(acl).split(",")):
            return True
    return False


def on_queuejob(e, site):
    """Classify and route; reject a hand-set magrathea; never blocks (no network)."""
    job = e.job
    rl = job.Resource_List
    sel = res(rl, "select")
    if names_magrathea(rl):
        e.reject("the magrathea resource is set by the system; remove magrathea from your request")
    check_images(e, site, rl)
    qname = queue_name(job)
    priority_queues = set(site["priority_queues"]) | set([site["priority_queue"]])
    interactive = bool(job.interactive)
    if (qname == site["priority_queue"] and not interactive and site["priority_queue_interactive_only"]
            and not privileged(e)):
        e.reject("queue %s takes interactive jobs (qsub -I); submit batch jobs to another queue" % qname)
    is_priority = interactive or (qname in priority_queues)
    if is_priority and qname != site["priority_queue"]:
        job.queue = pbs.server().queue(site["priority_queue"])
        log(pbs.EVENT_DEBUG, "routed %s job to queue %s" % ("interactive" if interactive else qname, site["priority_queue"]))
    token = "priority" if is_priority else "normal"
    if sel is not None:
        chunks = [c for c in str(sel).split("+") if c]
        rl["select"] = pbs.select("+".join(c + ":magrathea=" + token for c in chunks))
    e.accept()


def on_modifyjob(e, site):
    """qalter: nobody but PBS and its managers may name magrathea (a user's qalter of
    select=...:magrathea=priority would run a batch job in the priority domain)."""
    if privileged(e):
        e.accept()
    rl = e.job.Resource_List
    if names_magrathea(rl):
        e.reject("the magrathea resource is set by the system; it cannot be changed with qalter")
    check_images(e, site, rl)
    e.accept()


def on_movejob(e, site):
    """qmove into a priority queue would give a batch job the priority token (the queue's
    default_chunk): only PBS and its managers may do that."""
    if privileged(e):
        e.accept()
    target = queue_name(e.job)
    priority_queues = set(site["priority_queues"]) | set([site["priority_queue"]])
    if target in priority_queues:
        e.reject("jobs cannot be moved into the priority queue %s" % target)
    e.accept()


def on_resvsub(e, site):
    """A reservation may not ask for the magrathea resource either."""
    if privileged(e):
        e.accept()
    rl = e.resv.Resource_List
    if names_magrathea(rl):
        e.reject("the magrathea resource is set by the system; remove magrathea from the reservation")
    check_images(e, site, rl)
    e.accept()


def on_execjob_begin(e, site):
    """StartJob for this domain: the daemon is the race arbiter. Any refusal or failure requeues
    the job (rerun + reject) and takes the vnode out of scheduling."""
    job = e.job
    vn = local_vnode(e)
    try:
        dom = domain_config(site)
    except HookConfigError as ex:
        take_out(site, vn, PREFIX + "hook misconfigured")
        job.rerun()
        e.reject("magrathea: cannot start %s: %s" % (job.id, ex))
    preemptible = node_count(job) == 1 and queue_name(job) not in site["non_preemptible_queues"]
    body = {"domain": dom["domain"], "job_id": str(job.id), "preemptible": preemptible, "cpus": local_cpus(e)}
    try:
        status, obj = call_daemon(dom, "POST", "/v1/jobs/start", body, site["timeout"])
    except DaemonUnavailable as ex:
        log(pbs.EVENT_ERROR, "node daemon unreachable for %s: %s" % (job.id, ex))
        take_out(site, vn, PREFIX + "node daemon unreachable")
        job.rerun()
        e.reject("magrathea: node daemon unreachable; job %s requeued" % job.id)
    if status == 200 and obj.get("ok"):
        publish(site, vn, obj.get("status"))
        log(pbs.EVENT_DEBUG, "started %s in %s (%s)" % (job.id, dom["domain"], obj.get("state")))
        e.accept()
    reason = obj.get("reason") or obj.get("error") or ("HTTP %s" % status)
    log(pbs.EVENT_JOB, "start of %s refused in %s: %s" % (job.id, dom["domain"], reason))
    take_out(site, vn, PREFIX + "refused %s (%s)" % (job.id, reason), obj.get("status"))
    job.rerun()
    e.reject("magrathea: start of %s refused in %s: %s: %s" % (job.id, dom["domain"], reason, obj.get("message", "")))


def on_execjob_end(e, site):
    """EndJob with retries. Runs in the background; never rejects (cleanup must go on)."""
    job = e.job
    try:
        dom = domain_config(site)
    except HookConfigError as ex:
        log(pbs.EVENT_ERROR, "cannot end %s: %s" % (job.id, ex))
        e.accept()
    body = {"domain": dom["domain"], "job_id": str(job.id)}
    # The job's exit status: a lifecycle domain with keepFailed keeps a failed job's overlay.
    try:
        if job.Exit_status is not None:
            body["exit_status"] = int(job.Exit_status)
    except (TypeError, ValueError):
        pass
    delay = 0.5
    for attempt in range(1, site["end_retries"] + 1):
        try:
            status, obj = call_daemon(dom, "POST", "/v1/jobs/end", body, site["timeout"])
        except DaemonUnavailable as ex:
            log(pbs.EVENT_ERROR, "EndJob %s attempt %d failed: %s" % (job.id, attempt, ex))
        else:
            if status == 200 and obj.get("ok"):
                if obj.get("warning"):
                    log(pbs.EVENT_DEBUG, "EndJob %s: %s" % (job.id, obj["warning"]))
                publish(site, local_vnode(e), obj.get("status"))
                e.accept()
            log(pbs.EVENT_ERROR, "EndJob %s refused (HTTP %s): %s" % (job.id, status, obj.get("message")))
            if 400 <= status < 500 and status not in (408, 429):
                break  # a definite answer; retrying cannot help
        if attempt < site["end_retries"]:
            time.sleep(delay)
            delay *= 2
    log(pbs.EVENT_ERROR, "EndJob %s not recorded; the daemon's reconciliation will report it" % job.id)
    e.accept()


def on_exechost_periodic(e, site):
    """Publish this domain's own state (the fallback when the filter is not deployed)."""
    if not site["publish_from_mom"]:
        e.accept()  # magrathea-filter is the one writer
    vn = local_vnode(e)
    try:
        dom = domain_config(site)
        status, obj = call_daemon(dom, "GET", "/v1/domains/" + dom["domain"], None, site["timeout"])
        if status != 200 or not obj.get("ok"):
            raise DaemonUnavailable("HTTP %s: %s" % (status, obj.get("message")))
    except (HookConfigError, DaemonUnavailable) as ex:
        log(pbs.EVENT_ERROR, "cannot read the domain state: %s" % ex)
        publish(site, vn, {"magrathea": "none", "state": "unreachable", "comment": PREFIX + "node daemon unreachable"})
        e.accept()
    publish(site, vn, obj)
    e.accept()


def exec_vnodes(job):
    ev = job.exec_vnode
    names = []
    for chunk in str(ev or "").split("+"):
        name = chunk.strip().strip("()").split(":")[0]
        if name and name not in names:
            names.append(name)
    return names


def on_runjob(e, site):
    """Cheap admission check against the filter's view, so a stale placement is refused before
    the job is sent to the mom. Runs inside pbs_server: one short call, and any failure accepts
    (the mom's execjob_begin stays the arbiter)."""
    job = e.job
    url = site["filter_admit_url"]
    vnodes = exec_vnodes(job)
    if not url or not vnodes:
        e.accept()
    priority_queues = set(site["priority_queues"]) | set([site["priority_queue"]])
    body = {"job_id": str(job.id), "job_class": "priority" if queue_name(job) in priority_queues else "normal", "vnodes": vnodes}
    req = urlrequest.Request(url, data=json.dumps(body).encode("utf-8"), headers={"Content-Type": "application/json"}, method="POST")
    try:
        resp = urlrequest.urlopen(req, timeout=site["admit_timeout"])
        obj = json.loads(resp.read(MAX_RESPONSE).decode("utf-8"))
    except Exception as ex:
        log(pbs.EVENT_DEBUG, "admission check skipped for %s: %s" % (job.id, ex))
        e.accept()
    if isinstance(obj, dict) and obj.get("admit") is False:
        reasons = obj.get("reasons") if isinstance(obj.get("reasons"), list) else []
        e.reject("magrathea: not admitted now: %s" % "; ".join(str(r) for r in reasons[:3]))
    e.accept()


def on_server_periodic(e, site):
    """Never installed as a server periodic hook; pbs_server 23.06 runs a mom periodic hook as one
    after `set hook ... freq` on a hook that has content (the installer never does that)."""
    e.accept()


HANDLERS = {
    pbs.QUEUEJOB: on_queuejob,
    pbs.MODIFYJOB: on_modifyjob,
    pbs.MOVEJOB: on_movejob,
    pbs.RESVSUB: on_resvsub,
    pbs.PERIODIC: on_server_periodic,
    pbs.EXECJOB_BEGIN: on_execjob_begin,
    pbs.EXECJOB_END: on_execjob_end,
    pbs.EXECHOST_PERIODIC: on_exechost_periodic,
    pbs.EXECHOST_STARTUP: on_exechost_periodic,
    pbs.RUNJOB: on_runjob,
}


def main():
    e = pbs.event()
    handler = HANDLERS.get(e.type)
    if handler is None:
        log(pbs.EVENT_ERROR, "hook %s is attached to an event it does not handle (%s)" % (e.hook_name, e.type))
        e.accept()
    try:
        site = site_config()
    except HookConfigError as ex:
        log(pbs.EVENT_ERROR, str(ex))
        if e.type == pbs.EXECJOB_BEGIN:
            e.job.rerun()
            e.reject("magrathea: hook misconfigured: %s" % ex)
        if e.type in (pbs.EXECHOST_PERIODIC, pbs.EXECHOST_STARTUP):
            publish(dict(SITE_DEFAULTS), local_vnode(e), {"magrathea": "none", "state": "unknown", "comment": PREFIX + "hook misconfigured"})
        if e.type == pbs.QUEUEJOB and names_magrathea(e.job.Resource_List):
            e.reject("the magrathea resource is set by the system; remove magrathea from your request")
        if e.type in (pbs.MODIFYJOB, pbs.MOVEJOB, pbs.RESVSUB) and not privileged(e):
            # The guards fail closed: a broken config must not open the priority domain.
            e.reject("magrathea: hook misconfigured; ask your PBS administrator")
        e.accept()  # queuejob and execjob_end must never block on our configuration
    handler(e, site)


try:
    main()
except SystemExit:
    raise
except Exception:
    # A bug of ours: log it, and take the safe path for the event.
    pbs.logmsg(pbs.EVENT_ERROR, PREFIX + "hook failed: " + traceback.format_exc())
    ev = pbs.event()
    if ev.type == pbs.EXECJOB_BEGIN:
        ev.job.rerun()
        ev.reject("magrathea: hook failed; job requeued")
    if ev.type in (pbs.MODIFYJOB, pbs.MOVEJOB, pbs.RESVSUB):
        ev.reject("magrathea: hook failed; ask your PBS administrator")
    ev.accept()

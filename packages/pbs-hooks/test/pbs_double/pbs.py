# A test double of OpenPBS's `pbs` hook module, written from the OpenPBS integration brief
# (shared/reference/openpbs-hooks.md §2): events with their parameters, EventIncompatibleError
# for a parameter the event lacks, accept()/reject() raising SystemExit, case-insensitive
# resource dicts returning None for missing keys, recorded vnode assignments,
# rerun()/delete() only in mom events, get_local_nodename(), logmsg, server().vnode()/queue(),
# and the constants. Tests only: never installed on a PBS site.

# ------------------------------------------------------------------ constants (hook.h, pbs_nodes.h, log.h)
QUEUEJOB = 0x01
MODIFYJOB = 0x02
RESVSUB = 0x04
MOVEJOB = 0x08
RUNJOB = 0x10
PROVISION = 0x20
EXECJOB_BEGIN = 0x40
EXECJOB_PROLOGUE = 0x80
EXECJOB_EPILOGUE = 0x100
EXECJOB_END = 0x200
EXECJOB_PRETERM = 0x400
EXECJOB_LAUNCH = 0x800
EXECHOST_PERIODIC = 0x1000
EXECHOST_STARTUP = 0x2000
EXECJOB_ATTACH = 0x4000
PERIODIC = 0x8000
RESV_END = 0x10000
EXECJOB_RESIZE = 0x20000
EXECJOB_ABORT = 0x40000
EXECJOB_POSTSUSPEND = 0x80000
EXECJOB_PRERESUME = 0x100000
MANAGEMENT = 0x200000
MODIFYVNODE = 0x400000
JOBOBIT = 0x800000
RESV_BEGIN = 0x1000000
RESV_CONFIRM = 0x2000000
MODIFYRESV = 0x4000000
POSTQUEUEJOB = 0x8000000

_EVENT_NAMES = {
    "QUEUEJOB": QUEUEJOB, "MODIFYJOB": MODIFYJOB, "RESVSUB": RESVSUB, "MOVEJOB": MOVEJOB, "RUNJOB": RUNJOB,
    "PROVISION": PROVISION, "EXECJOB_BEGIN": EXECJOB_BEGIN, "EXECJOB_PROLOGUE": EXECJOB_PROLOGUE,
    "EXECJOB_EPILOGUE": EXECJOB_EPILOGUE, "EXECJOB_END": EXECJOB_END, "EXECJOB_PRETERM": EXECJOB_PRETERM,
    "EXECJOB_LAUNCH": EXECJOB_LAUNCH, "EXECHOST_PERIODIC": EXECHOST_PERIODIC, "EXECHOST_STARTUP": EXECHOST_STARTUP,
    "EXECJOB_ATTACH": EXECJOB_ATTACH, "PERIODIC": PERIODIC, "RESV_END": RESV_END, "EXECJOB_RESIZE": EXECJOB_RESIZE,
    "EXECJOB_ABORT": EXECJOB_ABORT, "EXECJOB_POSTSUSPEND": EXECJOB_POSTSUSPEND, "EXECJOB_PRERESUME": EXECJOB_PRERESUME,
    "MANAGEMENT": MANAGEMENT, "MODIFYVNODE": MODIFYVNODE, "JOBOBIT": JOBOBIT, "RESV_BEGIN": RESV_BEGIN,
    "RESV_CONFIRM": RESV_CONFIRM, "MODIFYRESV": MODIFYRESV, "POSTQUEUEJOB": POSTQUEUEJOB,
}
for _n, _v in list(_EVENT_NAMES.items()):
    globals()["HOOK_EVENT_" + _n] = _v

MOM_EVENTS = (EXECJOB_BEGIN | EXECJOB_PROLOGUE | EXECJOB_EPILOGUE | EXECJOB_END | EXECJOB_PRETERM | EXECJOB_LAUNCH
              | EXECHOST_PERIODIC | EXECHOST_STARTUP | EXECJOB_ATTACH | EXECJOB_RESIZE | EXECJOB_ABORT
              | EXECJOB_POSTSUSPEND | EXECJOB_PRERESUME)

ND_FREE = ND_STATE_FREE = 0
ND_OFFLINE = 0x1
ND_DOWN = 0x2
ND_UNRESOLVABLE = 0x8
ND_JOBBUSY = 0x10
ND_STALE = 0x20
ND_JOB_EXCLUSIVE = 0x40
ND_BUSY = 0x80
ND_STATE_UNKNOWN = 0x100
ND_PROV = 0x800
ND_WAIT_PROV = 0x1000
ND_RESV_EXCLUSIVE = 0x2000
ND_STATE_OFFLINE_BY_MOM = 0x4000
ND_STATE_MAINTENANCE = 0x20000
ND_SLEEP = 0x40000

LOG_DEBUG = 5
LOG_WARNING = 6
LOG_ERROR = 7
EVENT_ERROR = 0x1
EVENT_SYSTEM = 0x2
EVENT_ADMIN = 0x4
EVENT_JOB = 0x8
EVENT_JOB_USAGE = 0x10
EVENT_SECURITY = 0x20
EVENT_SCHED = 0x40
EVENT_DEBUG = 0x80
EVENT_DEBUG2 = 0x100
EVENT_RESV = 0x200
EVENT_DEBUG3 = 0x400
EVENT_DEBUG4 = 0x800
EVENT_FORCE = 0x8000
_LOG_LEVELS = set([LOG_DEBUG, LOG_WARNING, LOG_ERROR, EVENT_ERROR, EVENT_SYSTEM, EVENT_ADMIN, EVENT_JOB,
                   EVENT_JOB_USAGE, EVENT_SECURITY, EVENT_SCHED, EVENT_DEBUG, EVENT_DEBUG2, EVENT_RESV,
                   EVENT_DEBUG3, EVENT_DEBUG4, EVENT_FORCE])


# ------------------------------------------------------------------ exceptions (_exc_types.py)
class EventIncompatibleError(AttributeError):
    pass


class UnsetAttributeNameError(Exception):
    pass


class BadAttributeValueTypeError(Exception):
    pass


class BadAttributeValueError(Exception):
    pass


class UnsetResourceNameError(Exception):
    pass


class BadResourceValueTypeError(Exception):
    pass


class BadResourceValueError(Exception):
    pass


# ------------------------------------------------------------------ value types
class _StrValue(str):
    """PBS value types keep their string form."""


class select(_StrValue):
    pass


class place(_StrValue):
    pass


class exec_vnode(_StrValue):
    pass


class exec_host(_StrValue):
    pass


class size(_StrValue):
    pass


def duration(text):
    parts = [int(p) for p in str(text).split(":")]
    total = 0
    for p in parts:
        total = total * 60 + p
    return total


# ------------------------------------------------------------------ recording state (read by the test runner)
_state = {"frozen": False, "accepted": False, "rejected": False, "reject_msg": None, "logs": [], "vnode_sets": {},
          "job_sets": {}, "rerun": False, "delete": False}
_event = None
_server = None
_local_nodename = "localhost"
hook_config_filename = None


def _check_frozen():
    if _state["frozen"]:
        raise BadAttributeValueError("Not permitted to modify attributes: accept() or reject() already called")


# Resources the server defines: PBS's built-in ones plus the site's custom ones (the scenario's
# "resourcedef", default Magrathea's). As in the real module (checked with pbs_python --hook), a
# name the server does not define raises AttributeError when read, and UnsetResourceNameError when
# set from a server hook (a mom hook creates it).
BUILTIN_RESOURCES = set(["ncpus", "mem", "vmem", "walltime", "cput", "select", "place", "nodect", "host", "vnode",
                         "arch", "aoe", "eoe", "mpiprocs", "ompthreads", "naccelerators", "accelerator_memory",
                         "hbmem", "file", "preempt_targets", "software", "pcput", "pmem", "pvmem", "nice",
                         "cpupercent", "start_time", "min_walltime", "max_walltime"])
_resources = set(BUILTIN_RESOURCES)


class pbs_resource(object):
    """Case-insensitive resource dict; a missing (defined) name reads as None; keys() lists non-None names."""

    def __init__(self, values=None, on_set=None):
        object.__setattr__(self, "_v", {})
        object.__setattr__(self, "_on_set", on_set)
        for k, v in (values or {}).items():
            self._v[k.lower()] = (k, v)

    def __getitem__(self, name):
        item = self._v.get(str(name).lower())
        if item is None and str(name).lower() not in _resources:
            raise AttributeError("'pbs_resource' object has no attribute '%s'" % name)
        return None if item is None else item[1]

    def __setitem__(self, name, value):
        _check_frozen()
        if str(name).lower() not in _resources:
            if _event is not None and not (_event.type & MOM_EVENTS):
                raise UnsetResourceNameError("resource '%s' is not defined on the server" % name)
            _resources.add(str(name).lower())
        self._v[str(name).lower()] = (str(name), value)
        if self._on_set:
            self._on_set(str(name), value)

    def __contains__(self, name):
        item = self._v.get(str(name).lower())
        return item is not None and item[1] is not None

    def keys(self):
        return [k for (k, v) in self._v.values() if v is not None]

    def __str__(self):
        return ",".join("%s=%s" % (k, v) for (k, v) in self._v.values() if v is not None)


JOB_ATTRIBUTES = set(["id", "queue", "interactive", "Resource_List", "resources_used", "schedselect", "exec_vnode",
                      "exec_host", "run_count", "run_version", "Job_Owner", "euser", "project", "comment",
                      "Hold_Types", "Execution_Time", "Variable_List", "array_index", "failed_mom_list",
                      "succeeded_mom_list", "job_state", "Job_Name", "Exit_status"])
READ_ONLY_JOB_ATTRIBUTES = set(["id", "interactive", "exec_vnode", "exec_host", "run_count", "Job_Owner", "euser",
                                "schedselect", "Exit_status"])


class queue(object):
    def __init__(self, name, attrs=None):
        object.__setattr__(self, "name", name)
        for k, v in (attrs or {}).items():
            object.__setattr__(self, k, v)

    def __getattr__(self, name):
        return None

    def __str__(self):
        return self.name


class job(object):
    def __init__(self, attrs, mom_event):
        d = object.__getattribute__(self, "__dict__")
        d["_mom_event"] = mom_event
        d["_attrs"] = {}
        for k, v in attrs.items():
            if k == "Resource_List":
                v = pbs_resource(v, lambda n, val: _state["job_sets"].__setitem__("Resource_List." + n, str(val)))
            d["_attrs"][k] = v
        if "Resource_List" not in d["_attrs"]:
            d["_attrs"]["Resource_List"] = pbs_resource({}, lambda n, val: _state["job_sets"].__setitem__("Resource_List." + n, str(val)))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self.__dict__["_attrs"].get(name)

    def __setattr__(self, name, value):
        _check_frozen()
        if name not in JOB_ATTRIBUTES:
            raise UnsetAttributeNameError("job attribute '%s' not found" % name)
        if name in READ_ONLY_JOB_ATTRIBUTES:
            raise BadAttributeValueError("job attribute '%s' is read-only" % name)
        if name == "Resource_List":
            raise BadAttributeValueError("cannot assign Resource_List; assign its entries")
        self.__dict__["_attrs"][name] = value
        _state["job_sets"][name] = getattr(value, "name", str(value))

    def rerun(self):
        if not self.__dict__["_mom_event"]:
            raise NotImplementedError("rerun() is only available in mom hooks")
        _state["rerun"] = True

    def delete(self):
        if not self.__dict__["_mom_event"]:
            raise NotImplementedError("delete() is only available in mom hooks")
        _state["delete"] = True

    def in_ms_mom(self):
        return bool(self.__dict__["_attrs"].get("_in_ms_mom", True))


VNODE_ATTRIBUTES = set(["name", "state", "comment", "resources_available", "resources_assigned", "ntype", "sharing",
                        "pcpus", "jobs", "pbs_version"])


class vnode(object):
    def __init__(self, name, attrs=None):
        d = object.__getattribute__(self, "__dict__")
        d["name"] = name
        d["_attrs"] = {}
        attrs = attrs or {}
        for k, v in attrs.items():
            if k in ("resources_available", "resources_assigned"):
                v = self._resources(k, v)
            d["_attrs"][k] = v
        for k in ("resources_available", "resources_assigned"):
            if k not in d["_attrs"]:
                d["_attrs"][k] = self._resources(k, {})

    def _resources(self, attr, values):
        name = self.__dict__["name"]
        return pbs_resource(values, lambda n, val: _state["vnode_sets"].setdefault(name, {}).__setitem__(
            "%s.%s" % (attr, n), None if val is None else (val if isinstance(val, (int, float)) else str(val))))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self.__dict__["_attrs"].get(name)

    def __setattr__(self, name, value):
        _check_frozen()
        if name not in VNODE_ATTRIBUTES or name == "name":
            raise UnsetAttributeNameError("vnode attribute '%s' not found or read-only" % name)
        self.__dict__["_attrs"][name] = value
        _state["vnode_sets"].setdefault(self.__dict__["name"], {})[name] = value

    def extract_state_strs(self):
        names = [(ND_OFFLINE, "offline"), (ND_DOWN, "down"), (ND_JOBBUSY, "job-busy"), (ND_STATE_MAINTENANCE, "maintenance")]
        st = self.state or 0
        out = [n for (bit, n) in names if st & bit]
        return out or ["free"]


class _vnode_list(dict):
    def __setitem__(self, key, value):
        _check_frozen()
        dict.__setitem__(self, key, value)


class server(object):
    """pbs.server(): the scenario's server (name, queues, vnodes). Read-only from hooks."""

    def __new__(cls):
        return _server

    @classmethod
    def _make(cls, spec):
        s = object.__new__(cls)
        s.name = spec.get("name", "pbsserver")
        # Server attributes read by hooks (None when unset), e.g. managers = "root@head,admin@*".
        s.managers = spec.get("managers")
        s.operators = spec.get("operators")
        s._queues = dict((n, queue(n, a)) for (n, a) in spec.get("queues", {}).items())
        s._vnodes = dict((n, vnode(n, a)) for (n, a) in spec.get("vnodes", {}).items())
        return s

    def queue(self, name):
        if "@" in name:
            raise BadAttributeValueError("queue name may not contain @")
        return self._queues.get(name)

    def vnode(self, name):
        return self._vnodes.get(name)

    def queues(self):
        return iter(self._queues.values())

    def vnodes(self):
        return iter(self._vnodes.values())

    def jobs(self):
        return iter([])

    def scheduler_restart_cycle(self):
        _state["logs"].append([EVENT_DEBUG, "scheduler_restart_cycle"])


class resv(object):
    """A reservation request (resvsub): its Resource_List."""

    def __init__(self, attrs):
        d = object.__getattribute__(self, "__dict__")
        d["_attrs"] = dict(attrs)
        d["_attrs"]["Resource_List"] = pbs_resource(attrs.get("Resource_List", {}))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self.__dict__["_attrs"].get(name)


_EVENT_PARAMS = {
    QUEUEJOB: ("job",),
    RESVSUB: ("resv",),
    MODIFYJOB: ("job", "job_o"),
    MOVEJOB: ("job", "src_queue"),
    RUNJOB: ("job",),
    EXECJOB_BEGIN: ("job", "vnode_list"),
    EXECJOB_PROLOGUE: ("job", "vnode_list", "vnode_list_fail"),
    EXECJOB_EPILOGUE: ("job", "vnode_list"),
    EXECJOB_END: ("job", "vnode_list"),
    EXECJOB_PRETERM: ("job", "vnode_list"),
    EXECJOB_LAUNCH: ("job", "vnode_list", "progname", "argv", "env"),
    EXECHOST_PERIODIC: ("vnode_list", "job_list"),
    EXECHOST_STARTUP: ("vnode_list",),
    PERIODIC: ("vnode_list", "resv_list"),
}


class event(object):
    """pbs.event(): the single event of this run."""

    def __new__(cls):
        return _event

    @classmethod
    def _make(cls, spec):
        e = object.__new__(cls)
        t = spec["type"]
        etype = _EVENT_NAMES[t] if isinstance(t, str) else int(t)
        mom = bool(etype & MOM_EVENTS)
        params = {}
        allowed = _EVENT_PARAMS.get(etype, ())
        if "job" in allowed:
            jattrs = dict(spec.get("job", {}))
            q = jattrs.get("queue")
            if q is not None and not mom:
                jattrs["queue"] = queue(q)
            params["job"] = job(jattrs, mom)
        if "vnode_list" in allowed:
            vl = _vnode_list()
            for name, attrs in spec.get("vnode_list", {}).items():
                dict.__setitem__(vl, name, vnode(name, attrs))
            params["vnode_list"] = vl
        if "resv" in allowed:
            params["resv"] = resv(spec.get("resv", {}))
        if "job_list" in allowed:
            params["job_list"] = dict((jid, job(a, mom)) for (jid, a) in spec.get("job_list", {}).items())
        for p in allowed:
            params.setdefault(p, None)
        d = object.__getattribute__(e, "__dict__")
        d["_param"] = params
        d["type"] = etype
        d["hook_name"] = spec.get("hook_name", "magrathea")
        d["hook_type"] = "site"
        d["requestor"] = spec.get("requestor", "pbs_mom" if mom else "PBS_Server")
        d["requestor_host"] = spec.get("requestor_host", "localhost")
        d["freq"] = spec.get("freq", 120)
        return e

    def __getattr__(self, name):
        params = self.__dict__["_param"]
        if name in params:
            return params[name]
        raise EventIncompatibleError("event has no parameter '%s'" % name)

    def __setattr__(self, name, value):
        if name in ("progname", "argv", "env") and name in self.__dict__["_param"]:
            self.__dict__["_param"][name] = value
            return
        raise BadAttributeValueError("event attribute '%s' is read-only" % name)

    def accept(self, ecode=0):
        _state["accepted"] = True
        _state["frozen"] = True
        raise SystemExit(str(ecode))

    def reject(self, emsg="", ecode=255):
        _state["rejected"] = True
        _state["reject_msg"] = emsg
        _state["frozen"] = True
        raise SystemExit(str(ecode))


def get_local_nodename():
    return _local_nodename


def logmsg(level, msg):
    if level not in _LOG_LEVELS:
        raise TypeError("logmsg: unknown level %r" % (level,))
    _state["logs"].append([level, str(msg)])


def logjobmsg(jobid, msg):
    _state["logs"].append([EVENT_DEBUG, "%s;%s" % (jobid, msg)])


def get_pbs_conf():
    return {"PBS_SERVER": _server.name if _server else "pbsserver"}


def reboot(cmd=None):
    if not (_event.type & MOM_EVENTS):
        raise NotImplementedError("reboot() is only available in mom hooks")
    raise SystemExit("reboot")


def _setup(spec):
    """Called by the test runner before the hook file runs."""
    global _event, _server, _local_nodename, hook_config_filename, _resources
    _resources = set(BUILTIN_RESOURCES) | set(
        r.lower() for r in spec.get("resourcedef", ["magrathea", "magrathea_state", "magrathea_rank", "magrathea_image", "magrathea_cpus"]))
    _server = server._make(spec.get("server", {}))
    _event = event._make(spec["event"])
    _local_nodename = spec.get("local_nodename", "localhost")
    hook_config_filename = spec.get("config_file")

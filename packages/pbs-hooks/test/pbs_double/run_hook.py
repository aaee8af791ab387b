"""Runs a real hook file the way PBS does (as a script, with `pbs` importable) against the
test double, from a JSON scenario on stdin; prints what the hook did as JSON on stdout.

Scenario: {"hook": path, "event": {...}, "local_nodename": str, "server": {...},
           "config_file": path|null, "env": {...}}
Result:   {"outcome": "accept"|"reject"|"implicit-accept"|"exception", "reject_msg",
           "exception", "job_sets", "vnode_sets", "rerun", "delete", "logs", "elapsed_ms"}
"""
import json
import os
import runpy
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pbs  # noqa: E402  (the double)


def main():
    spec = json.load(sys.stdin)
    for k, v in spec.get("env", {}).items():
        os.environ[k] = v
    if spec.get("config_file"):
        os.environ["PBS_HOOK_CONFIG_FILE"] = spec["config_file"]
    else:
        os.environ.pop("PBS_HOOK_CONFIG_FILE", None)
    pbs._setup(spec)
    outcome, exc = "implicit-accept", None
    t0 = time.time()
    try:
        runpy.run_path(spec["hook"], run_name="__main__")
    except SystemExit:
        outcome = "reject" if pbs._state["rejected"] else "accept"
    except BaseException:
        outcome, exc = "exception", traceback.format_exc()
    result = {
        "outcome": outcome,
        "reject_msg": pbs._state["reject_msg"],
        "exception": exc,
        "job_sets": pbs._state["job_sets"],
        "vnode_sets": pbs._state["vnode_sets"],
        "rerun": pbs._state["rerun"],
        "delete": pbs._state["delete"],
        "logs": pbs._state["logs"],
        "elapsed_ms": (time.time() - t0) * 1000.0,
    }
    sys.stdout.write(json.dumps(result, default=str))


main()

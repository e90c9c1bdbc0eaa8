"""Runs the *built* function once, as Lambda's python3.12 runtime would: a no-Docker stand-in for
`sam local invoke`.

Started as ``python3.12 -I -S -B lambda_driver.py EVENT RESULT DIR...``: isolated (no PYTHON*
variables, no user or site packages, not even this file's directory), so ``sys.path`` holds
DIR... — the built function, the built layer's python/ and the runtime's boto3, in Lambda's
order — and the standard library, nothing else; and no bytecode is written, as in Lambda's
read-only code directories. The environment is the function's, as the template sets it.
Writes the handler's answer (or its exception), where each third-party package came from and the
peak memory to RESULT as JSON; the function's own output (logs, EMF metrics) goes to stdout.

It also records every module the import system compiles from source — which, with no bytecode
written, is every module it found no valid .pyc for — and, for each module imported from DIR...,
its file and the .pyc it names (``__cached__``): the proof that the artifact ships the bytecode
it runs.

Standard library only: nothing else is importable here until DIR... are on the path.
"""

import importlib.machinery
import json
import sys
import traceback

event_path, result_path, *code_dirs = sys.argv[1:]
sys.path[:0] = code_dirs

# Every import of a .py that finds no usable .pyc compiles it through this method (CPython's
# SourceLoader.get_code), so recording its calls names each module compiled during the run.
compiled_from_source: list[str] = []
_source_to_code = importlib.machinery.SourceFileLoader.source_to_code


def _recording_source_to_code(self, data, path, *args, **kwargs):
    compiled_from_source.append(str(path))
    return _source_to_code(self, data, path, *args, **kwargs)


importlib.machinery.SourceFileLoader.source_to_code = _recording_source_to_code


def origins() -> dict[str, str]:
    """Which of DIR... each imported top-level package came from (the standard library is left
    out)."""
    found = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        for directory in code_dirs:
            if "." not in name and path.startswith(directory.rstrip("/") + "/"):
                found[name] = directory
    return found


def loaded_from_code_dirs() -> dict[str, dict[str, str | None]]:
    """Each module imported from DIR...: its file and the .pyc it names."""
    found = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if any(path.startswith(directory.rstrip("/") + "/") for directory in code_dirs):
            found[name] = {"file": path, "cached": getattr(module, "__cached__", None)}
    return found


def peak_rss_kib() -> int:
    """This process's peak resident memory. Not getrusage's ru_maxrss: Linux carries that over
    from the parent (pytest) across fork and exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    import os

    with open(event_path) as file:
        event = json.load(file)
    from zego_resume.local_context import LocalContext  # the built function's own stand-in

    context = LocalContext(
        timeout_seconds=float(os.environ["DRIVER_TIMEOUT_SECONDS"]),
        memory_limit_in_mb=int(os.environ["DRIVER_MEMORY_MB"]),
        function_name="zego-stream-resume-ResumeStreamsFunction",
    )
    result: dict[str, object] = {
        "sysPath": sys.path,
        "basePrefix": sys.base_prefix,
        "isolated": bool(sys.flags.isolated and sys.flags.no_site),
    }
    try:
        import app

        result["answer"] = app.lambda_handler(event, context)
    except Exception as error:
        result["error"] = {"type": type(error).__name__, "message": str(error)}
        traceback.print_exc()
    result["origins"] = origins()
    result["loaded"] = loaded_from_code_dirs()
    result["compiledFromSource"] = compiled_from_source
    result["peakRssKiB"] = peak_rss_kib()
    with open(result_path, "w") as file:
        json.dump(result, file)


main()

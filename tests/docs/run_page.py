"""Run one page's blocks in order, in the current folder (a fresh one per page): the child
process of ``test_examples.py``. Argument: a JSON file of the steps. A failing step prints where
it is on the page and exits 1.

Python blocks share one namespace, as a reader's session or notebook would; ``bash`` blocks run
with ``bash -e -o pipefail``, with this interpreter's folder first on PATH (so ``cnnstep`` and
``python`` are the ones under test); test-setup comments run in a namespace of their own, with
``fixtures`` (``tests/docs/docs_fixtures.py``) in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_fixtures as fixtures  # noqa: E402  (tests/docs/docs_fixtures.py)


def main(steps_file: str) -> int:
    steps = json.loads(Path(steps_file).read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "__main__"}
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    for step in steps:
        where, language, code = step["where"], step["language"], step["code"]
        print(f"--- {where} ({language})", flush=True)
        if language == "bash":
            done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], env=env)
            if done.returncode != 0:
                print(f"FAILED {where}: exit code {done.returncode} from\n{code}", flush=True)
                return 1
            continue
        scope = {"fixtures": fixtures, "__name__": "__setup__"} if language == "setup" \
            else namespace
        try:
            exec(compile(code, where, "exec"), scope)  # noqa: S102 (the page's own example)
        except BaseException:  # noqa: BLE001 - report any failure of the example, then stop
            traceback.print_exc()
            print(f"FAILED {where}", flush=True)
            return 1
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))

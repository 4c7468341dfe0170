r"""Wall seconds of ``import skcreate`` and ``skcreate --help`` in fresh processes.

    git worktree add /tmp/before <commit>
    python benchmarks/import_time.py --before /tmp/before --runs 5

With ``--before``, the other checkout is measured in the same run, interleaved with this one
(``PYTHONPATH`` selects the checkout), so machine load affects both alike.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {"import skcreate": ["-c", "import skcreate"],
            "skcreate --help": ["-m", "skcreate", "--help"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=None, help="another checkout to measure alongside")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    trees = {"this checkout": Path(__file__).resolve().parents[1]}
    if args.before:
        trees = {"before": Path(args.before).resolve(), "after": trees["this checkout"]}
    seconds = {(tree, name): [] for tree in trees for name in COMMANDS}
    for _ in range(args.runs):
        for tree, root in trees.items():
            for name, command in COMMANDS.items():
                env = dict(os.environ, PYTHONPATH=str(root))
                start = time.perf_counter()
                subprocess.run([sys.executable, *command], env=env, cwd="/", check=True,
                               capture_output=True)
                seconds[tree, name].append(time.perf_counter() - start)
    for (tree, name), values in seconds.items():
        print(f"{name:16s} {tree:14s} median {statistics.median(values):.2f} s, "
              f"min {min(values):.2f} s ({args.runs} runs)")
    print("load averages:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()

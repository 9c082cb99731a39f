"""Compiles every .py file below the given directories and prints, one per
line, each file that fails with the error's class and message: run on
CPython and on ferrocorn over the same wheels, the files that only
ferrocorn refuses are compiler bugs (compat/run.py compares them)."""

import os
import sys


def main(roots):
    for root in roots:
        for directory, _, files in os.walk(root):
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    source = f.read()
                try:
                    compile(source, path, "exec", dont_inherit=True)
                except (SyntaxError, ValueError) as error:
                    message = str(error).replace("\n", " ")
                    print("%s\t%s: %s" % (os.path.relpath(path, root), type(error).__name__, message))


if __name__ == "__main__":
    main(sys.argv[1:])

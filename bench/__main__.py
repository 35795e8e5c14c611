"""python -m bench <command> ...: see bench/__init__.py."""

from .cli import main

main()

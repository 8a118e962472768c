"""`make bench` / `python -m bench [--quick] [SECTION ...]`: see bench/__init__.py."""

from bench.main import main

main()

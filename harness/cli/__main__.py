"""`python -m harness.cli ...` is the `harness` command."""

from harness.cli import main

main()

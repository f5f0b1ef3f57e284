"""``python -m harness``."""

from harness._cli import main

main()

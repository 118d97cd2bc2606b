"""Run the ``mastery`` command as ``python -m mastery_deploy``, which is how
``mastery up`` starts its services with the same interpreter."""

from mastery_deploy.cli import main

main()

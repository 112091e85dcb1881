"""``python3 -m corral.hostagent`` (the manager's own host) runs the agent."""

from .main import main

raise SystemExit(main())

from dv.cli import main

raise SystemExit(main())

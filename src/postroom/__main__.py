try:
    from postroom.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line is still loading: no traceback either
    raise SystemExit(130) from None

raise SystemExit(main())

from nstd.cli import main

if __name__ == "__main__":  # spawn re-imports this module in the worker: it must not run main
    raise SystemExit(main())

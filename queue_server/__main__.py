from queue_server.cli import main

if __name__ == "__main__":  # guarded like any main module: the speech worker is spawned
    raise SystemExit(main())

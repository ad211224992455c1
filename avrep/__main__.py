from avrep.cli import main

if __name__ == "__main__":  # guard: spawned worker processes import __main__
    main()

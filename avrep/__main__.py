from avrep.cli import main

main()

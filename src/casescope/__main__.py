from casescope.cli.app import main

main()

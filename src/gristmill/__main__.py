from gristmill.cli.main import main

main()

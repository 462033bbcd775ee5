from aialliance_cli.cli.main import main

main()

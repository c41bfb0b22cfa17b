from capcast.cli.app import main

main()

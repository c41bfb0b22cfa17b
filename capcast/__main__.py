from capcast.cli import main

main()

from ksmrepro.cli import main

main()

from dagfactory.cli import main

main()

from diffrend.compat.conformance.run import main

main()

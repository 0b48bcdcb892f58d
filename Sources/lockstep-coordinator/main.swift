import LockstepCLI

CoordinatorCommand.main()

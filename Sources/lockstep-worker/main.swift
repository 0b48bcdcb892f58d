import LockstepCLI

WorkerCommand.main()

import ArgumentParser
import LockstepRuntime
print("lockstep-coordinator")

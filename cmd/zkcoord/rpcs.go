package main

// commandRPCs names, for each client command, the zkcoord.v1 methods it
// calls. TestEveryRPCHasACommand checks that every method of every
// zkcoord.v1 service is named here and that every command named exists:
// a new RPC without a command fails it.
var commandRPCs = map[string][]string{
	"get":                 {"RegistryService.Lookup"},
	"watch":               {"RegistryService.WatchGroup", "RegistryService.Watch"}, // several groups: Watch
	"register":            {"RegistryService.Register"},
	"deregister":          {"RegistryService.Deregister"},
	"lease grant":         {"LeaseService.Grant"},
	"lease keepalive":     {"LeaseService.KeepAlive", "LeaseService.KeepAliveStream"}, // --forever: the stream
	"lease revoke":        {"LeaseService.Revoke"},
	"lease get":           {"LeaseService.GetLease"},
	"leader":              {"ElectionService.Leader"},
	"observe":             {"ElectionService.Observe"},
	"resign":              {"ElectionService.Resign"},
	"elect":               {"ElectionService.Campaign", "ElectionService.Resign", "LeaseService.Grant", "LeaseService.KeepAliveStream", "LeaseService.Revoke"},
	"barrier await":       {"BarrierService.AwaitBarrier"},
	"barrier join":        {"BarrierService.JoinBarrier"},
	"barrier leave":       {"BarrierService.LeaveBarrier"},
	"barrier get":         {"BarrierService.GetBarrier"},
	"barrier await-group": {"BarrierService.AwaitGroup"},
	"lock":                {"LockService.AcquireLock", "LockService.TryAcquireLock", "LockService.ReleaseLock"}, // --try: TryAcquireLock
	"lock get":            {"LockService.GetLock"},
	"lock release":        {"LockService.ReleaseLock"},
	"semaphore acquire":   {"SemaphoreService.AcquireSemaphore", "SemaphoreService.TryAcquireSemaphore", "SemaphoreService.ReleaseSemaphore"},
	"semaphore get":       {"SemaphoreService.GetSemaphore"},
	"semaphore release":   {"SemaphoreService.ReleaseSemaphore"},
	"check-sequencer":     {"LockService.CheckSequencer"},
	"status":              {"StatusService.GetStatus"},
	"ls groups":           {"InspectService.ListGroups"},
	"ls elections":        {"InspectService.ListElections"},
	"ls barriers":         {"InspectService.ListBarriers"},
	"ls locks":            {"InspectService.ListLocks"},
	"ls semaphores":       {"InspectService.ListSemaphores"},
	"ls leases":           {"InspectService.ListLeases"},
	"ls replicas":         {"InspectService.ListReplicas"},
}

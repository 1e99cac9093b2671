package metrics

import (
	"runtime"
	"runtime/pprof"
	"time"
)

// processStart is when this process's Go runtime initialised the package:
// the process start time to within milliseconds.
var processStart = time.Now()

// StartTime is when the process started.
func StartTime() time.Time { return processStart }

// WriteRuntime writes the Go runtime families: goroutines, threads,
// GOMAXPROCS, the version, heap and GC figures. It calls
// runtime.ReadMemStats (a short stop-the-world), fine at scrape rate.
func WriteRuntime(w *Writer) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if w.Family("go_info", Gauge, "The Go version the binary was built with.") {
		w.Sample(1, Label{Name: "version", Value: runtime.Version()})
	}
	w.Gauge("go_goroutines", "Goroutines that currently exist.", float64(runtime.NumGoroutine()))
	w.Gauge("go_threads", "OS threads created by the Go runtime.", float64(pprof.Lookup("threadcreate").Count()))
	w.Gauge("go_gomaxprocs", "GOMAXPROCS: the CPUs Go code may run on at once.", float64(runtime.GOMAXPROCS(0)))
	w.Gauge("go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects (live and not yet swept).", float64(ms.HeapAlloc))
	w.Gauge("go_memstats_heap_inuse_bytes", "Bytes in in-use heap spans.", float64(ms.HeapInuse))
	w.Gauge("go_memstats_heap_sys_bytes", "Bytes of heap memory obtained from the OS.", float64(ms.HeapSys))
	w.Gauge("go_memstats_heap_idle_bytes", "Bytes in idle heap spans (free, some returned to the OS).", float64(ms.HeapIdle))
	w.Gauge("go_memstats_heap_released_bytes", "Bytes of idle heap returned to the OS.", float64(ms.HeapReleased))
	w.Gauge("go_memstats_stack_inuse_bytes", "Bytes of goroutine stacks (and spans held for them).", float64(ms.StackInuse))
	w.Gauge("go_memstats_heap_objects", "Allocated heap objects.", float64(ms.HeapObjects))
	w.Gauge("go_memstats_sys_bytes", "Bytes of memory obtained from the OS by the Go runtime, all uses.", float64(ms.Sys))
	w.Gauge("go_memstats_next_gc_bytes", "Heap size at which the next GC cycle starts.", float64(ms.NextGC))
	w.Counter("go_memstats_alloc_bytes_total", "Bytes allocated on the heap since start (the garbage the GC has to chase).", float64(ms.TotalAlloc))
	w.Counter("go_gc_cycles_total", "Completed GC cycles.", float64(ms.NumGC))
	w.Counter("go_gc_pause_seconds_total", "Total stop-the-world GC pause time.", float64(ms.PauseTotalNs)/1e9)
	w.Gauge("go_gc_last_pause_seconds", "Duration of the most recent GC pause (0 before the first GC).", LastPause(&ms).Seconds())
}

// LastPause is the most recent GC pause recorded in ms.
func LastPause(ms *runtime.MemStats) time.Duration {
	if ms.NumGC == 0 {
		return 0
	}
	return time.Duration(ms.PauseNs[(ms.NumGC+255)%256])
}

// Process holds the figures the OS gives about this process.
type Process struct {
	// RSS is the resident set size in bytes. On Linux it is read from
	// /proc/self/statm; elsewhere it is estimated as the memory the Go
	// runtime holds from the OS (RSSEstimated is then set).
	RSS          uint64
	RSSEstimated bool
	// OpenFDs is the number of open file descriptors; -1 if unknown
	// (known on Linux).
	OpenFDs int
	// MaxFDs is the open-file limit (RLIMIT_NOFILE); -1 if unknown.
	MaxFDs int64
	// CPUSeconds is user plus system CPU time; -1 if unknown.
	CPUSeconds float64
}

// ReadProcess reads the process figures.
func ReadProcess() Process {
	p := Process{OpenFDs: -1, MaxFDs: -1, CPUSeconds: -1}
	readProcess(&p)
	if p.RSS == 0 {
		p.RSS, p.RSSEstimated = estimatedRSS(), true
	}
	return p
}

// RSS is the process's resident set size in bytes (see Process.RSS).
func RSS() uint64 {
	if n := readRSS(); n > 0 {
		return n
	}
	return estimatedRSS()
}

// estimatedRSS is what the Go runtime holds from the OS minus what it
// has returned: an upper bound of the Go part of the RSS.
func estimatedRSS() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Sys - ms.HeapReleased
}

// WriteProcess writes the process families: resident memory, open and
// maximum file descriptors and CPU time where the OS tells them, and the
// start time.
func WriteProcess(w *Writer) {
	p := ReadProcess()
	help := "Resident memory size in bytes."
	if p.RSSEstimated {
		help = "Resident memory size in bytes, estimated from the Go runtime (no /proc on this OS)."
	}
	w.Gauge("process_resident_memory_bytes", help, float64(p.RSS))
	if p.OpenFDs >= 0 {
		w.Gauge("process_open_fds", "Open file descriptors.", float64(p.OpenFDs))
	}
	if p.MaxFDs >= 0 {
		w.Gauge("process_max_fds", "Limit of open file descriptors (RLIMIT_NOFILE).", float64(p.MaxFDs))
	}
	if p.CPUSeconds >= 0 {
		w.Counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", p.CPUSeconds)
	}
	w.Gauge("process_start_time_seconds", "Start time of the process since the unix epoch, in seconds.",
		float64(processStart.UnixNano())/1e9)
}

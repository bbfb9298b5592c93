// Command loadgen is Simple Chat's WebSocket load generator (see bench/README.md).
//
// It speaks only the tutorial's frame {"email","username","message"}, so it measures the Go
// tutorial server and ours the same way. Every connection is a raw non-blocking socket read
// from one epoll loop on one thread (no goroutine per connection), with a minimal RFC 6455
// client: handshake, masked text frames out, a frame parser in. Each sent text embeds the
// run's marker, the sender, a global sequence number and the send time (monotonic ns), so a
// receiver measures latency, loss and order; frames that are not this run's messages
// (history, presence, welcome, notices, errors) are ignored.
//
// It measures its own CPU use (getrusage) over every measured window and flags a result where
// it was more than 85% busy: such a figure is the load generator's limit, not the server's.
// With -pid it also samples the server's CPU (utime+stime from /proc/PID/stat) and RSS at the
// exact edges of each window, and with -pids the CPU of more processes (a cluster's other node,
// Redis). With -sender-addr the senders are extra connections to another server (node A of a
// cluster) and only the -clients connections to -addr (node B) are counted receivers; the
// senders' own copies of their messages are timed apart (`sender_echo`). It prints one JSON
// object on stdout; progress goes to stderr. Only loopback addresses are accepted, and every
// run ends by itself (-deadline).
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/bits"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// busyLimit is the load generator's own CPU share above which a result is flagged.
const busyLimit = 0.85

type config struct {
	addr       string
	path       string
	mode       string
	clients    int
	senders    int
	rate       float64
	duration   float64
	warmup     float64
	size       int
	pid        int
	parallel   int
	deadline   float64
	rampStart  float64
	rampFactor float64
	rampMax    float64
	rampStep   float64
	rampBisect int
	rampP99    float64
	rampBudget float64
	serverCore int
	idleMsgs   int
	settle     float64
	window     float64
	slowRcvbuf int
	churnRate  float64
	churnLife  float64
	churnMax   int
	drain      float64
	senderAddr string
	pids       string
	cookies    string
	greet      string
	greetReply string
}

type kind uint8

const (
	kClient kind = iota // a counted receiver (and maybe a sender)
	kSlow               // connects, then never reads again
	kChurn              // connects, maybe posts once, disconnects
	kSender             // with -sender-addr: a sender on that server, not a counted receiver
)

type state uint8

const (
	sConnecting state = iota
	sHandshake
	sOpen
	sClosed
)

type conn struct {
	fd        int
	kind      kind
	st        state
	idx       int // receiver index (kClient), -1 otherwise
	node      int // which -addr it connects to (its index), 0 with one
	sender    int // sender index, -1 if it never sends
	started   int64
	hs        []byte
	partial   []byte
	frag      []byte
	fragging  bool
	out       []byte
	outArmed  bool
	dirty     bool
	inEpoll   bool
	closeAt   int64
	closeHow  int
	churnSend bool
	greetLeft int // -greet: replies still awaited (one per frame sent)
	email     string
	name      string
}

// hist is a log-linear latency histogram in microseconds (relative error < 1/128).
type hist struct {
	b     [6400]uint64
	n     uint64
	maxNs int64
}

func bucketOf(us uint64) int {
	if us < 256 {
		return int(us)
	}
	e := bits.Len64(us) - 8
	return e*128 + int(us>>uint(e))
}

func bucketMid(i int) float64 {
	if i < 256 {
		return float64(i) + 0.5
	}
	e := i/128 - 1
	sub := i - e*128
	return (float64(sub) + 0.5) * float64(uint64(1)<<uint(e))
}

func (h *hist) add(ns int64) {
	if ns < 0 {
		ns = 0
	}
	i := bucketOf(uint64(ns) / 1000)
	if i >= len(h.b) {
		i = len(h.b) - 1
	}
	h.b[i]++
	h.n++
	if ns > h.maxNs {
		h.maxNs = ns
	}
}

// pct returns the q-quantile in milliseconds.
func (h *hist) pct(q float64) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	want := uint64(math.Ceil(q * float64(h.n)))
	if want < 1 {
		want = 1
	}
	var acc uint64
	for i, c := range h.b {
		acc += c
		if acc >= want {
			v := bucketMid(i) / 1000
			if m := float64(h.maxNs) / 1e6; v > m {
				v = m
			}
			return v
		}
	}
	return float64(h.maxNs) / 1e6
}

type srvSample struct {
	ok     bool
	cpuSec float64
	rssKiB int64
	waitNs int64     // time its threads were runnable but waiting for a CPU (schedstat)
	coreS  float64   // non-idle seconds of the server's core, softirq included (/proc/stat)
	myWait int64     // the same for the load generator itself
	procs  []float64 // CPU seconds of each -pids process (-1: unreadable)
}

// procNames are the names given in -pids, in the order of srvSample.procs.
var procNames []string

// coreBusy returns the non-idle seconds (user, nice, system, irq, softirq, steal) of one core.
func coreBusy(core int) float64 {
	if core < 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	prefix := "cpu" + strconv.Itoa(core) + " "
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		var busy float64
		for i, v := range f[1:] {
			if i == 3 || i == 4 || i >= 8 { // idle, iowait, guest, guest_nice
				continue
			}
			x, _ := strconv.ParseFloat(v, 64)
			busy += x
		}
		return busy / 100
	}
	return 0
}

// runqWait sums the run-queue wait (second field of schedstat) of every thread of a process.
func runqWait(pid string) int64 {
	dirs, err := os.ReadDir("/proc/" + pid + "/task")
	if err != nil {
		return 0
	}
	var total int64
	for _, d := range dirs {
		b, err := os.ReadFile("/proc/" + pid + "/task/" + d.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			total += v
		}
	}
	return total
}

type step struct {
	name      string
	target    float64
	startNs   int64
	sendEndNs int64
	endNs     int64
	firstG    uint64
	endG      uint64
	sent      uint64
	expected  uint64
	delivered uint64
	lastRecv  int64
	h         hist
	ru0       float64
	ruSendEnd float64
	ru1       float64
	srv0      srvSample
	srvSend   srvSample
	srv1      srvSample
	drained   bool
	slowest   []int64 // the slowest delivery (ns) per 250 ms slice of send time
	echo      *hist   // with -sender-addr: the senders' own copies (their server's local fan-out)
}

const sliceNs = 250e6

func (s *step) note(sentAt, lat int64) {
	i := int((sentAt - s.startNs) / sliceNs)
	if i < 0 || i > 100000 {
		return
	}
	for len(s.slowest) <= i {
		s.slowest = append(s.slowest, 0)
	}
	if lat > s.slowest[i] {
		s.slowest[i] = lat
	}
}

type gen struct {
	cfg    *config
	epfd   int
	events []syscall.EpollEvent
	byFD   []*conn
	t0     time.Time
	rbuf   []byte
	rng    uint64
	run    string
	marker []byte
	sas    []syscall.SockaddrInet4 // -addr: the receivers' servers, dialled in turn
	reqs   [][]byte                // the handshake request for each of sas
	next   int                     // the index in sas of the next receiver dialled
	sendSA syscall.SockaddrInet4   // with -sender-addr: where the senders connect
	sendRq []byte
	// -cookies: each a whole header line, sent by the upgrades in turn (cookieNext: the next)
	cookies    [][]byte
	cookieNext int
	pids       []int // -pids, in the order of procNames
	// -greet: the frames each client sends once open, by connection in turn (greetNext: the
	// next); greeted counts the clients that had every reply, greetErrs the error replies
	greets     [][][]byte
	greetNext  int
	greetReply []byte
	greeted    int
	greetErrs  int

	clients   []*conn
	senders   []*conn
	nOpenRecv int
	lastSeen  []uint64
	nSenders  int
	pendingC  []*conn
	connFail  int
	failWhy   map[string]int
	closeWhy  map[string]int
	unexpClos int
	senderClo int

	sending  bool
	interval float64
	nextSend float64
	rr       int
	gseq     uint64
	steps    []*step
	cur      *step
	dirty    []*conn
	scratch  []byte
	pad      string

	totalExpected  uint64
	totalDelivered uint64
	dups           uint64
	foreign        uint64
	parseErr       uint64
	pings          uint64
	binary         uint64

	churnOn        bool
	churnInterval  float64
	churnNext      float64
	churners       []*conn
	churnSeq       int
	churnTried     int
	churnOK        int
	churnFail      int
	churnSkipped   int
	churnAbandoned int
	churnConnect   hist

	rssSeries []map[string]float64
	nextRSS   int64

	lastTimeoutCheck int64
	deadlineNs       int64
}

func main() {
	cfg := &config{}
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:8000", "server host:port (loopback only); a comma list "+
		"spreads the clients over several servers (cluster nodes) in turn, and the senders among them")
	flag.StringVar(&cfg.path, "path", "/ws", "WebSocket path")
	flag.StringVar(&cfg.mode, "mode", "fixed", "fixed | ramp | steady | idle | slow | churn")
	flag.IntVar(&cfg.clients, "clients", 1000, "connected clients, every one a receiver")
	flag.IntVar(&cfg.senders, "senders", 10, "how many of the clients send")
	flag.Float64Var(&cfg.rate, "rate", 10000, "target deliveries/s (fixed, slow, churn)")
	flag.Float64Var(&cfg.duration, "duration", 10, "measured seconds (fixed, slow, churn)")
	flag.Float64Var(&cfg.warmup, "warmup", 2, "warm-up seconds before measuring (fixed, slow, churn)")
	flag.IntVar(&cfg.size, "size", 0, "extra characters of padding in each message text")
	flag.IntVar(&cfg.pid, "pid", 0, "server PID: sample its CPU and RSS from /proc at every window edge")
	flag.IntVar(&cfg.parallel, "parallel", 64, "handshakes in flight while connecting")
	flag.Float64Var(&cfg.deadline, "deadline", 120, "hard limit on the whole run, seconds")
	flag.Float64Var(&cfg.rampStart, "ramp-start", 20000, "ramp: first rate, deliveries/s")
	flag.Float64Var(&cfg.rampFactor, "ramp-factor", 2, "ramp: rate multiplier between steps")
	flag.Float64Var(&cfg.rampMax, "ramp-max", 4e6, "ramp: highest rate tried")
	flag.Float64Var(&cfg.rampStep, "ramp-step", 3, "ramp: seconds of sending per step")
	flag.IntVar(&cfg.rampBisect, "ramp-bisect", 3, "ramp: bisection steps after the first failure")
	flag.Float64Var(&cfg.rampP99, "ramp-p99", 500, "ramp: a step passes with p99 <= this (ms) and no loss")
	flag.IntVar(&cfg.serverCore, "server-core", 0, "the core the server is pinned to (-1: none), for its busy time")
	flag.Float64Var(&cfg.rampBudget, "ramp-budget", 55, "ramp: start no step after this many seconds")
	flag.IntVar(&cfg.idleMsgs, "idle-msgs", 5, "idle: messages sent one at a time to all")
	flag.Float64Var(&cfg.settle, "settle", 1, "idle: seconds to wait after connecting before reading RSS")
	flag.Float64Var(&cfg.window, "window", 5, "steady, slow, churn: seconds per reported window")
	flag.IntVar(&cfg.slowRcvbuf, "slow-rcvbuf", 4096, "slow: SO_RCVBUF of the client that never reads")
	flag.Float64Var(&cfg.churnRate, "churn-rate", 200, "churn: connections opened per second")
	flag.Float64Var(&cfg.churnLife, "churn-life", 500, "churn: longest life of a churning connection, ms")
	flag.IntVar(&cfg.churnMax, "churn-max", 500, "churn: most churning connections at once")
	flag.Float64Var(&cfg.drain, "drain", 5, "seconds to wait for outstanding deliveries after sending stops")
	flag.StringVar(&cfg.senderAddr, "sender-addr", "", "host:port of another server for the senders: then "+
		"-senders extra connections there send, and only the -clients connections to -addr are counted receivers")
	flag.StringVar(&cfg.pids, "pids", "", "name=pid,... of more processes whose CPU is sampled at every window edge")
	flag.StringVar(&cfg.greet, "greet", "", "a file of frames a client sends once open, one line per "+
		"client in turn (i mod lines), the frames of a line separated by tabs: e.g. joins with since")
	flag.StringVar(&cfg.greetReply, "greet-reply", `"type":"history"`, "with -greet: a client is "+
		"ready once it has had one frame holding this per frame it sent (idle mode waits for all)")
	flag.StringVar(&cfg.cookies, "cookies", "", "a file of Cookie header values, one per line: the i-th "+
		"upgrade sends line i mod n (\"chat_session=TOKEN\": signed-in connections, each handshake a session lookup)")
	flag.Parse()

	runtime.LockOSThread()
	debug.SetGCPercent(400)
	raiseNofile(cfg.clients + cfg.churnMax + 256)

	g, err := newGen(cfg)
	if err != nil {
		fatal(err.Error())
	}
	var res map[string]any
	switch cfg.mode {
	case "fixed":
		res = g.modeFixed()
	case "ramp":
		res = g.modeRamp()
	case "steady":
		res = g.modeSteady()
	case "idle":
		res = g.modeIdle()
	case "slow":
		res = g.modeSlow()
	case "churn":
		res = g.modeChurn()
	default:
		fatal("unknown -mode " + cfg.mode)
	}
	res["mode"] = cfg.mode
	res["run"] = g.run
	res["config"] = g.configMap()
	res["counters"] = g.counters()
	g.printResult(res)
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "loadgen:", msg)
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
}

func raiseNofile(want int) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur >= uint64(want) {
		return
	}
	if rl.Max < uint64(want) {
		rl.Max = uint64(want)
	}
	rl.Cur = uint64(want)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		logf("cannot raise RLIMIT_NOFILE to %d: %v", want, err)
	}
}

func newGen(cfg *config) (*gen, error) {
	var sas []syscall.SockaddrInet4
	addrs := strings.Split(cfg.addr, ",")
	for _, addr := range addrs {
		sa, err := loopbackAddr("-addr", strings.TrimSpace(addr))
		if err != nil {
			return nil, err
		}
		sas = append(sas, sa)
	}
	var err error
	if cfg.senders < 1 || (cfg.senders > cfg.clients && cfg.senderAddr == "") {
		if cfg.mode != "idle" {
			return nil, fmt.Errorf("-senders must be 1..clients")
		}
	}
	var sendSA syscall.SockaddrInet4
	if cfg.senderAddr != "" {
		if sendSA, err = loopbackAddr("-sender-addr", cfg.senderAddr); err != nil {
			return nil, err
		}
	}
	var pids []int
	procNames = nil
	for _, item := range strings.Split(cfg.pids, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		name, pidS, ok := strings.Cut(item, "=")
		pid, err := strconv.Atoi(pidS)
		if !ok || name == "" || err != nil || pid <= 0 {
			return nil, fmt.Errorf("-pids wants name=pid,..., got %q", item)
		}
		procNames = append(procNames, name)
		pids = append(pids, pid)
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	g := &gen{
		cfg:      cfg,
		epfd:     epfd,
		events:   make([]syscall.EpollEvent, 1024),
		t0:       time.Now(),
		rbuf:     make([]byte, 256*1024),
		failWhy:  map[string]int{},
		closeWhy: map[string]int{},
		scratch:  make([]byte, 0, 8192),
	}
	g.rng = uint64(time.Now().UnixNano()) | 1
	g.run = fmt.Sprintf("%06x", g.rand()&0xffffff)
	g.marker = []byte("LG" + g.run + "~")
	g.pad = strings.Repeat("x", cfg.size)
	g.sas, g.sendSA, g.pids = sas, sendSA, pids
	key := make([]byte, 16)
	for i := range key {
		key[i] = byte(g.rand())
	}
	if cfg.cookies != "" {
		text, err := os.ReadFile(cfg.cookies)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(text), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				g.cookies = append(g.cookies, []byte("Cookie: "+line+"\r\n"))
			}
		}
		if len(g.cookies) == 0 {
			return nil, fmt.Errorf("-cookies %s: no cookie in it", cfg.cookies)
		}
	}
	if cfg.greet != "" {
		text, err := os.ReadFile(cfg.greet)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(text), "\n") {
			if line = strings.TrimSpace(line); line == "" {
				continue
			}
			var frames [][]byte
			for _, f := range strings.Split(line, "\t") {
				frames = append(frames, []byte(f))
			}
			g.greets = append(g.greets, frames)
		}
		if len(g.greets) == 0 {
			return nil, fmt.Errorf("-greet %s: no frame in it", cfg.greet)
		}
		g.greetReply = []byte(cfg.greetReply)
	}
	// The request's head without its closing blank line: hello() adds the cookie and ends it.
	request := func(host string) []byte {
		return []byte("GET " + cfg.path + " HTTP/1.1\r\nHost: " + host +
			"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
			base64.StdEncoding.EncodeToString(key) + "\r\nSec-WebSocket-Version: 13\r\n")
	}
	for _, addr := range addrs {
		g.reqs = append(g.reqs, request(strings.TrimSpace(addr)))
	}
	if cfg.senderAddr != "" {
		g.sendRq = request(cfg.senderAddr)
	}
	g.deadlineNs = int64(cfg.deadline * 1e9)
	return g, nil
}

// hello queues c's upgrade request: its server's, with the next -cookies line if any.
func (g *gen) hello(c *conn) {
	if c.kind == kSender {
		c.out = append(c.out[:0], g.sendRq...)
	} else {
		c.out = append(c.out[:0], g.reqs[c.node]...)
	}
	if len(g.cookies) > 0 {
		c.out = append(c.out, g.cookies[g.cookieNext%len(g.cookies)]...)
		g.cookieNext++
	}
	c.out = append(c.out, "\r\n"...)
}

// loopbackAddr parses an IPv4 loopback host:port.
func loopbackAddr(what, addr string) (syscall.SockaddrInet4, error) {
	var sa syscall.SockaddrInet4
	host, portS, err := net.SplitHostPort(addr)
	if err != nil {
		return sa, err
	}
	ip := net.ParseIP(host)
	if host == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return sa, fmt.Errorf("%s must be an IPv4 loopback address, got %q", what, host)
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		return sa, err
	}
	copy(sa.Addr[:], ip.To4())
	sa.Port = port
	return sa, nil
}

func (g *gen) rand() uint64 {
	g.rng ^= g.rng << 13
	g.rng ^= g.rng >> 7
	g.rng ^= g.rng << 17
	return g.rng
}

func (g *gen) now() int64 { return int64(time.Since(g.t0)) }

func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6 + float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6
}

// sample reads the server's CPU seconds (utime+stime of /proc/PID/stat) and RSS.
func (g *gen) sample() srvSample {
	if g.cfg.pid <= 0 {
		return srvSample{myWait: runqWait("self")}
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(g.cfg.pid) + "/stat")
	if err != nil {
		return srvSample{}
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return srvSample{}
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return srvSample{}
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	rssPages, _ := strconv.ParseInt(f[21], 10, 64)
	var procs []float64
	for _, pid := range g.pids {
		procs = append(procs, procCPU(pid))
	}
	return srvSample{ok: true, cpuSec: (ut + st) / 100, rssKiB: rssPages * int64(os.Getpagesize()) / 1024,
		waitNs: runqWait(strconv.Itoa(g.cfg.pid)), myWait: runqWait("self"), coreS: coreBusy(g.cfg.serverCore),
		procs: procs}
}

// procCPU returns utime+stime of a process in seconds, or -1.
func procCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// ---------------------------------------------------------------- connections

func (g *gen) dial(k kind, now int64) *conn {
	c := &conn{fd: -1, kind: k, idx: -1, sender: -1, started: now}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		g.failConnect(c, "socket: "+err.Error())
		return c
	}
	c.fd = fd
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if k == kSlow && g.cfg.slowRcvbuf > 0 {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, g.cfg.slowRcvbuf)
	}
	var sa *syscall.SockaddrInet4
	if k == kSender {
		sa = &g.sendSA
	} else {
		c.node = g.next
		g.next = (g.next + 1) % len(g.sas)
		sa = &g.sas[c.node]
	}
	err = syscall.Connect(fd, sa)
	if err != nil && err != syscall.EINPROGRESS {
		g.failConnect(c, "connect: "+err.Error())
		return c
	}
	for fd >= len(g.byFD) {
		g.byFD = append(g.byFD, make([]*conn, len(g.byFD)+1024)...)
	}
	g.byFD[fd] = c
	c.st = sConnecting
	if err := syscall.EpollCtl(g.epfd, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT, Fd: int32(fd)}); err != nil {
		g.failConnect(c, "epoll: "+err.Error())
		return c
	}
	c.inEpoll = true
	c.outArmed = true
	g.pendingC = append(g.pendingC, c)
	return c
}

func (g *gen) dropPending(c *conn) {
	for i, p := range g.pendingC {
		if p == c {
			last := len(g.pendingC) - 1
			g.pendingC[i] = g.pendingC[last]
			g.pendingC[last] = nil
			g.pendingC = g.pendingC[:last]
			return
		}
	}
}

func (g *gen) release(c *conn) {
	if c.fd >= 0 {
		if c.inEpoll {
			_ = syscall.EpollCtl(g.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
			c.inEpoll = false
		}
		if c.fd < len(g.byFD) && g.byFD[c.fd] == c {
			g.byFD[c.fd] = nil
		}
		_ = syscall.Close(c.fd)
		c.fd = -1
	}
	c.st = sClosed
	c.out, c.partial, c.frag, c.hs = nil, nil, nil, nil
}

func (g *gen) failConnect(c *conn, why string) {
	if c.st == sConnecting || c.st == sHandshake {
		g.dropPending(c)
	}
	if i := strings.IndexByte(why, '\r'); i > 0 {
		why = why[:i]
	}
	if c.kind == kChurn {
		g.churnFail++
	} else {
		g.connFail++
	}
	g.failWhy[why]++
	g.release(c)
}

// closeConn ends an open connection; intentional closes are not counted as unexpected.
func (g *gen) closeConn(c *conn, why string, intentional bool) {
	if c.st == sClosed {
		return
	}
	if c.st != sOpen {
		g.failConnect(c, why)
		return
	}
	if c.kind == kClient {
		g.nOpenRecv--
		if !intentional {
			g.unexpClos++
			g.closeWhy[why]++
		}
	}
	if c.kind == kSender && !intentional {
		g.senderClo++
		g.closeWhy["sender: "+why]++
	}
	g.release(c)
}

func (g *gen) setOut(c *conn, on bool) {
	if c.outArmed == on || !c.inEpoll {
		return
	}
	ev := uint32(syscall.EPOLLIN)
	if on {
		ev |= syscall.EPOLLOUT
	}
	if c.kind == kSlow && c.st == sOpen {
		ev &^= syscall.EPOLLIN
	}
	_ = syscall.EpollCtl(g.epfd, syscall.EPOLL_CTL_MOD, c.fd, &syscall.EpollEvent{Events: ev, Fd: int32(c.fd)})
	c.outArmed = on
}

func (g *gen) flush(c *conn) {
	for len(c.out) > 0 && c.st != sClosed {
		n, err := sysWrite(c.fd, c.out)
		if n > 0 {
			rest := copy(c.out, c.out[n:])
			c.out = c.out[:rest]
			continue
		}
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			g.setOut(c, true)
			return
		}
		g.closeConn(c, "write: "+errString(err), false)
		return
	}
	if c.st != sClosed {
		g.setOut(c, false)
	}
}

// sysRead and sysWrite skip the Go scheduler's bookkeeping around a system call: the sockets
// are non-blocking, so these calls never block, and this one thread owns every socket.
func sysRead(fd int, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func sysWrite(fd int, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func errString(err error) string {
	if err == nil {
		return "EOF"
	}
	return err.Error()
}

func (g *gen) handle(ev syscall.EpollEvent, now int64) {
	fd := int(ev.Fd)
	if fd >= len(g.byFD) {
		return
	}
	c := g.byFD[fd]
	if c == nil {
		return
	}
	if c.st == sConnecting {
		if ev.Events&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) == 0 {
			return
		}
		soerr, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err != nil || soerr != 0 {
			g.failConnect(c, "connect: "+syscall.Errno(soerr).Error())
			return
		}
		c.st = sHandshake
		g.hello(c)
		g.flush(c)
		return
	}
	if ev.Events&syscall.EPOLLOUT != 0 {
		g.flush(c)
		if c.st == sClosed {
			return
		}
	}
	if ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		g.readConn(c, now)
	}
}

func (g *gen) readConn(c *conn, now int64) {
	for i := 0; i < 8; i++ {
		n, err := sysRead(c.fd, g.rbuf)
		if n > 0 {
			g.feed(c, g.rbuf[:n], now)
			if c.st == sClosed || (c.kind == kSlow && c.st == sOpen) || n < len(g.rbuf) {
				return
			}
			continue
		}
		if err == syscall.EAGAIN {
			return
		}
		if err == syscall.EINTR {
			continue
		}
		g.closeConn(c, "read: "+errString(err), false)
		return
	}
}

func (g *gen) feed(c *conn, data []byte, now int64) {
	if c.st == sHandshake {
		c.hs = append(c.hs, data...)
		i := bytes.Index(c.hs, []byte("\r\n\r\n"))
		if i < 0 {
			if len(c.hs) > 65536 {
				g.failConnect(c, "handshake: response too long")
			}
			return
		}
		if !bytes.HasPrefix(c.hs, []byte("HTTP/1.1 101")) {
			line := c.hs
			if j := bytes.IndexByte(line, '\r'); j >= 0 {
				line = line[:j]
			}
			g.failConnect(c, "handshake: "+string(line))
			return
		}
		rest := append([]byte(nil), c.hs[i+4:]...)
		c.hs = nil
		g.onOpen(c, now)
		if c.st != sOpen || len(rest) == 0 || c.kind == kSlow {
			return
		}
		data = rest
	}
	buf := data
	fromPartial := len(c.partial) > 0
	if fromPartial {
		c.partial = append(c.partial, data...)
		buf = c.partial
	}
	used := g.parse(c, buf, now)
	if c.st == sClosed {
		return
	}
	rem := buf[used:]
	switch {
	case len(rem) == 0:
		c.partial = c.partial[:0]
		if cap(c.partial) > 1<<20 {
			c.partial = nil
		}
	case fromPartial:
		n := copy(c.partial, rem)
		c.partial = c.partial[:n]
	default:
		c.partial = append(c.partial[:0], rem...)
	}
}

func (g *gen) parse(c *conn, b []byte, now int64) int {
	off := 0
	for {
		r := b[off:]
		if len(r) < 2 {
			return off
		}
		b0, b1 := r[0], r[1]
		op := b0 & 0x0f
		fin := b0&0x80 != 0
		hl := 2
		pl := uint64(b1 & 0x7f)
		if pl == 126 {
			if len(r) < 4 {
				return off
			}
			pl = uint64(binary.BigEndian.Uint16(r[2:4]))
			hl = 4
		} else if pl == 127 {
			if len(r) < 10 {
				return off
			}
			pl = binary.BigEndian.Uint64(r[2:10])
			hl = 10
		}
		masked := b1&0x80 != 0
		var mk [4]byte
		if masked {
			if len(r) < hl+4 {
				return off
			}
			copy(mk[:], r[hl:hl+4])
			hl += 4
		}
		if pl > 64<<20 {
			g.closeConn(c, "frame larger than 64 MiB", false)
			return off
		}
		if uint64(len(r)) < uint64(hl)+pl {
			return off
		}
		p := r[hl : hl+int(pl)]
		if masked {
			for i := range p {
				p[i] ^= mk[i&3]
			}
		}
		off += hl + int(pl)
		g.frame(c, op, fin, p, now)
		if c.st == sClosed {
			return off
		}
	}
}

func (g *gen) frame(c *conn, op byte, fin bool, p []byte, now int64) {
	switch op {
	case 0x1:
		if fin {
			g.text(c, p, now)
		} else {
			c.frag = append(c.frag[:0], p...)
			c.fragging = true
		}
	case 0x0:
		if c.fragging {
			c.frag = append(c.frag, p...)
			if fin {
				c.fragging = false
				g.text(c, c.frag, now)
			}
		}
	case 0x2:
		g.binary++
	case 0x8:
		code := 1005
		if len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p[:2]))
		}
		g.closeConn(c, fmt.Sprintf("close frame %d", code), false)
	case 0x9:
		g.pings++
		c.out = g.appendFrame(c.out, 0x8A, p)
		g.flush(c)
	}
}

func parseUint(b []byte) (uint64, []byte, bool) {
	var v uint64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + uint64(b[i]-'0')
	}
	if i == 0 || i >= len(b) || b[i] != '~' {
		return 0, b, false
	}
	return v, b[i+1:], true
}

func (g *gen) text(c *conn, p []byte, now int64) {
	if c.kind == kSender {
		g.echo(p, now)
		return
	}
	if c.kind != kClient {
		return
	}
	if c.greetLeft > 0 {
		if bytes.Contains(p, []byte(`"type":"error"`)) {
			g.greetErrs++
			if g.greetErrs <= 3 {
				logf("-greet: an error reply: %.300s", p)
			}
		}
		if bytes.Contains(p, g.greetReply) {
			if c.greetLeft--; c.greetLeft == 0 {
				g.greeted++
			}
			return
		}
	}
	i := bytes.Index(p, g.marker)
	if i < 0 {
		g.foreign++
		return
	}
	q := p[i+len(g.marker):]
	snd, q, ok1 := parseUint(q)
	gs, q, ok2 := parseUint(q)
	ts, _, ok3 := parseUint(q)
	if !ok1 || !ok2 || !ok3 || int(snd) >= g.nSenders || gs >= g.gseq {
		g.parseErr++
		return
	}
	key := c.idx*g.nSenders + int(snd)
	if gs+1 <= g.lastSeen[key] {
		g.dups++
		return
	}
	g.lastSeen[key] = gs + 1
	st := g.stepFor(gs)
	if st == nil {
		return
	}
	st.delivered++
	g.totalDelivered++
	st.h.add(now - int64(ts))
	st.note(int64(ts), now-int64(ts))
	if now > st.lastRecv {
		st.lastRecv = now
	}
}

// echo records a sender's own copy of a message (its server's local fan-out); not counted as
// a delivery.
func (g *gen) echo(p []byte, now int64) {
	i := bytes.Index(p, g.marker)
	if i < 0 {
		return
	}
	q := p[i+len(g.marker):]
	_, q, ok1 := parseUint(q)
	gs, q, ok2 := parseUint(q)
	ts, _, ok3 := parseUint(q)
	if !ok1 || !ok2 || !ok3 || gs >= g.gseq {
		return
	}
	if st := g.stepFor(gs); st != nil {
		if st.echo == nil {
			st.echo = &hist{}
		}
		st.echo.add(now - int64(ts))
	}
}

func (g *gen) stepFor(gs uint64) *step {
	for i := len(g.steps) - 1; i >= 0; i-- {
		if gs >= g.steps[i].firstG {
			return g.steps[i]
		}
	}
	return nil
}

func (g *gen) onOpen(c *conn, now int64) {
	g.dropPending(c)
	c.st = sOpen
	switch c.kind {
	case kClient:
		g.nOpenRecv++
		if len(g.greets) > 0 {
			frames := g.greets[g.greetNext%len(g.greets)]
			g.greetNext++
			for _, f := range frames {
				c.out = g.appendFrame(c.out, 0x81, f)
			}
			c.greetLeft = len(frames)
			g.flush(c)
		}
	case kSlow:
		// From here on it never reads: its socket buffers fill and the server must cope.
		_ = syscall.EpollCtl(g.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
		c.inEpoll = false
	case kChurn:
		g.churnOK++
		g.churnConnect.add(now - c.started)
		c.closeAt = now + int64(float64(g.rand()%1000)/1000*g.cfg.churnLife*1e6)
		if c.churnSend {
			// A message the counted receivers ignore (another marker): it exercises the
			// server's join and leave paths for a connection that has posted.
			name := fmt.Sprintf("lg%sc%d", g.run, g.churnSeq)
			body := fmt.Sprintf(`{"email":"c%d@bench.invalid","username":"%s","message":"CH%s~churn"}`, g.churnSeq, name, g.run)
			c.out = g.appendFrame(c.out, 0x81, []byte(body))
			g.flush(c)
		}
	}
}

// appendFrame appends one masked client frame (opcode byte b0 includes FIN).
func (g *gen) appendFrame(out []byte, b0 byte, p []byte) []byte {
	out = append(out, b0)
	n := len(p)
	switch {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n < 65536:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	r := g.rand()
	mk := [4]byte{byte(r), byte(r >> 8), byte(r >> 16), byte(r >> 24)}
	out = append(out, mk[:]...)
	start := len(out)
	out = append(out, p...)
	for i := range out[start:] {
		out[start+i] ^= mk[i&3]
	}
	return out
}

// ---------------------------------------------------------------- the loop

func (g *gen) loop(done func(now int64) bool) {
	for {
		now := g.now()
		g.tick(now)
		if done(now) {
			return
		}
		if now > g.deadlineNs {
			g.deadlineExceeded()
		}
		timeout := 5
		if g.sending {
			wait := (g.nextSend - float64(now)) / 1e6
			if wait < float64(timeout) {
				timeout = int(math.Ceil(wait))
				if timeout < 1 {
					timeout = 1
				}
			}
		}
		n, err := syscall.EpollWait(g.epfd, g.events, timeout)
		if err != nil && err != syscall.EINTR {
			fatal("epoll_wait: " + err.Error())
		}
		now = g.now()
		for i := 0; i < n; i++ {
			g.handle(g.events[i], now)
		}
	}
}

func (g *gen) deadlineExceeded() {
	logf("deadline of %.0f s exceeded: reporting what was measured", g.cfg.deadline)
	res := map[string]any{
		"mode": g.cfg.mode, "run": g.run, "config": g.configMap(), "counters": g.counters(),
		"error": "deadline exceeded", "steps": g.stepsJSON(g.steps),
	}
	g.printResult(res)
	os.Exit(3)
}

func (g *gen) tick(now int64) {
	if g.sending {
		for k := 0; float64(now) >= g.nextSend && k < 20000; k++ {
			g.sendOne(now)
			g.nextSend += g.interval
		}
	}
	g.flushDirty()
	if g.churnOn {
		for float64(now) >= g.churnNext {
			g.churnNext += g.churnInterval
			g.churnTried++
			if len(g.churners) >= g.cfg.churnMax {
				g.churnSkipped++
				continue
			}
			c := g.dial(kChurn, now)
			g.churnSeq++
			c.churnSend = g.churnSeq%2 == 0
			c.closeHow = g.churnSeq % 3
			if c.st != sClosed {
				g.churners = append(g.churners, c)
			}
		}
	}
	if len(g.churners) > 0 {
		kept := g.churners[:0]
		for _, c := range g.churners {
			if c.st == sOpen && now >= c.closeAt {
				g.churnClose(c)
			}
			if c.st != sClosed {
				kept = append(kept, c)
			}
		}
		for i := len(kept); i < len(g.churners); i++ {
			g.churners[i] = nil
		}
		g.churners = kept
	}
	if now-g.lastTimeoutCheck > 100e6 {
		g.lastTimeoutCheck = now
		for i := 0; i < len(g.pendingC); {
			c := g.pendingC[i]
			if now-c.started > 10e9 {
				g.failConnect(c, "handshake timed out after 10 s")
				continue
			}
			i++
		}
	}
	if g.cfg.pid > 0 && g.nextRSS > 0 && now >= g.nextRSS {
		g.nextRSS = now + 1e9
		s := g.sample()
		if s.ok {
			g.rssSeries = append(g.rssSeries, map[string]float64{"t": round(float64(now)/1e9, 2), "rss_kib": float64(s.rssKiB), "cpu_s": round(s.cpuSec, 2)})
		}
	}
}

// churnClose ends a churning connection one of three ways: close frame, FIN, or RST.
func (g *gen) churnClose(c *conn) {
	switch c.closeHow {
	case 0:
		c.out = g.appendFrame(c.out, 0x88, []byte{0x03, 0xe8})
		g.flush(c)
	case 2:
		_ = syscall.SetsockoptLinger(c.fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
	}
	g.closeConn(c, "churn", true)
}

func (g *gen) flushDirty() {
	for _, c := range g.dirty {
		c.dirty = false
		if c.st == sOpen {
			g.flush(c)
		}
	}
	g.dirty = g.dirty[:0]
}

func (g *gen) sendOne(now int64) {
	c := g.senders[g.rr%len(g.senders)]
	g.rr++
	if c.st != sOpen {
		return
	}
	gs := g.gseq
	g.gseq++
	b := g.scratch[:0]
	b = append(b, `{"email":"`...)
	b = append(b, c.email...)
	b = append(b, `","username":"`...)
	b = append(b, c.name...)
	b = append(b, `","message":"`...)
	b = append(b, g.marker...)
	b = strconv.AppendInt(b, int64(c.sender), 10)
	b = append(b, '~')
	b = strconv.AppendUint(b, gs, 10)
	b = append(b, '~')
	b = strconv.AppendInt(b, g.now(), 10)
	b = append(b, '~')
	b = append(b, g.pad...)
	b = append(b, `"}`...)
	g.scratch = b
	c.out = g.appendFrame(c.out, 0x81, b)
	if !c.dirty {
		c.dirty = true
		g.dirty = append(g.dirty, c)
	}
	if s := g.cur; s != nil {
		s.sent++
		s.expected += uint64(g.nOpenRecv)
	}
	g.totalExpected += uint64(g.nOpenRecv)
}

// connectMany opens n connections of kind k, at most -parallel handshakes at a time.
func (g *gen) connectMany(n int, k kind) []*conn {
	out := make([]*conn, 0, n)
	started := 0
	t := g.now()
	g.loop(func(now int64) bool {
		for started < n && len(g.pendingC) < g.cfg.parallel {
			out = append(out, g.dial(k, now))
			started++
		}
		return started == n && len(g.pendingC) == 0
	})
	open := 0
	for _, c := range out {
		if c.st == sOpen {
			open++
		}
	}
	logf("%d/%d connections open in %.2f s", open, n, float64(g.now()-t)/1e9)
	return out
}

// setupClients connects the counted receivers and picks the senders among them.
func (g *gen) setupClients(n, senders int) float64 {
	t := g.now()
	conns := g.connectMany(n, kClient)
	elapsed := float64(g.now()-t) / 1e9
	for _, c := range conns {
		if c.st == sOpen {
			c.idx = len(g.clients)
			g.clients = append(g.clients, c)
		}
	}
	if len(g.clients) < n {
		logf("only %d of %d clients connected: %v", len(g.clients), n, g.failWhy)
	}
	var pool []*conn
	if g.cfg.senderAddr != "" {
		for _, c := range g.connectMany(senders, kSender) {
			if c.st == sOpen {
				pool = append(pool, c)
			}
		}
		if len(pool) < senders {
			logf("only %d of %d senders connected to %s: %v", len(pool), senders, g.cfg.senderAddr, g.failWhy)
		}
		senders = len(pool)
	} else if senders > len(g.clients) {
		senders = len(g.clients)
	}
	for i := 0; i < senders; i++ {
		var c *conn
		if pool != nil {
			c = pool[i]
		} else {
			c = g.clients[spread(i, senders, len(g.clients), len(g.sas))]
		}
		c.sender = i
		c.email = fmt.Sprintf("s%d@bench.invalid", i)
		c.name = fmt.Sprintf("lg%ss%d", g.run, i)
		g.senders = append(g.senders, c)
	}
	g.nSenders = len(g.senders)
	g.lastSeen = make([]uint64, len(g.clients)*g.nSenders)
	return elapsed
}

// spread is the index among n clients (dialled over servers servers in turn) of sender i of
// senders: evenly over the clients, and over the servers in turn as well.
func spread(i, senders, n, servers int) int {
	at := i * n / senders
	at += (i%servers - at%servers + servers) % servers
	if at >= n {
		at -= servers
	}
	return at
}

func (g *gen) runFor(sec float64) {
	end := g.now() + int64(sec*1e9)
	g.loop(func(now int64) bool { return now >= end })
}

func (g *gen) beginStep(name string, target float64) *step {
	now := g.now()
	s := &step{name: name, target: target, startNs: now, firstG: g.gseq, ru0: selfCPU(), srv0: g.sample()}
	if p := g.cur; p != nil && g.sending && p.sendEndNs == 0 {
		// The previous step's sending window ends where this one starts.
		p.sendEndNs, p.endG, p.ruSendEnd, p.srvSend = now, s.firstG, s.ru0, s.srv0
	}
	g.steps = append(g.steps, s)
	g.cur = s
	if target > 0 && g.nOpenRecv > 0 {
		msgs := target / float64(g.nOpenRecv)
		g.interval = 1e9 / msgs
		if !g.sending {
			g.nextSend = float64(now)
		}
		g.sending = true
	}
	return s
}

func (g *gen) endSending(s *step) {
	g.sending = false
	s.sendEndNs = g.now()
	s.endG = g.gseq
	s.ruSendEnd = selfCPU()
	s.srvSend = g.sample()
}

// drain waits until every expected delivery arrived, or maxSec passed, or nothing arrived
// for stallSec; then it closes the windows of the given steps.
func (g *gen) drain(maxSec, stallSec float64, steps ...*step) {
	start := g.now()
	end := start + int64(maxSec*1e9)
	lastN, lastT := g.totalDelivered, start
	g.loop(func(now int64) bool {
		if g.totalDelivered >= g.totalExpected {
			return true
		}
		if g.totalDelivered != lastN {
			lastN, lastT = g.totalDelivered, now
		}
		return now >= end || float64(now-lastT) > stallSec*1e9
	})
	now := g.now()
	ru, srv := selfCPU(), g.sample()
	for _, s := range steps {
		s.endNs, s.ru1, s.srv1 = now, ru, srv
		s.drained = s.delivered >= s.expected
		if s.sendEndNs == 0 {
			s.sendEndNs, s.endG, s.ruSendEnd, s.srvSend = now, g.gseq, ru, srv
		}
	}
}

// ---------------------------------------------------------------- results

func round(v float64, d int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return -1
	}
	p := math.Pow(10, float64(d))
	return math.Round(v*p) / p
}

func (s *step) json() map[string]any {
	sendDur := float64(s.sendEndNs-s.startNs) / 1e9
	win := float64(s.endNs-s.startNs) / 1e9
	m := map[string]any{
		"name":               s.name,
		"target_per_s":       round(s.target, 0),
		"send_seconds":       round(sendDur, 3),
		"sent":               s.sent,
		"expected":           s.expected,
		"delivered":          s.delivered,
		"lost":               int64(s.expected) - int64(s.delivered),
		"drained":            s.drained,
		"p50_ms":             round(s.h.pct(0.50), 3),
		"p95_ms":             round(s.h.pct(0.95), 3),
		"p99_ms":             round(s.h.pct(0.99), 3),
		"p999_ms":            round(s.h.pct(0.999), 3),
		"max_ms":             round(float64(s.h.maxNs)/1e6, 3),
		"loadgen_cpu":        -1.0,
		"loadgen_busy_flag":  false,
		"window_seconds":     round(win, 3),
		"offered_per_s":      -1.0,
		"delivered_per_s":    -1.0,
		"last_delivery_ms":   -1.0,
		"server_cpu_s":       -1.0,
		"server_cpu_share":   -1.0,
		"server_us_per_dlv":  -1.0,
		"server_rss_kib_0":   s.srv0.rssKiB,
		"server_rss_kib_end": s.srv1.rssKiB,
	}
	if e := s.echo; e != nil && e.n > 0 {
		m["sender_echo"] = map[string]any{"n": e.n, "p50_ms": round(e.pct(0.5), 3),
			"p99_ms": round(e.pct(0.99), 3), "max_ms": round(float64(e.maxNs)/1e6, 3)}
	}
	if len(procNames) > 0 && len(s.srv0.procs) == len(procNames) && len(s.srv1.procs) == len(procNames) {
		procs := map[string]any{}
		for i, name := range procNames {
			a, b := s.srv0.procs[i], s.srv1.procs[i]
			if a < 0 || b < 0 {
				continue
			}
			p := map[string]any{"cpu_s": round(b-a, 3), "share": -1.0, "us_per_dlv": -1.0}
			if win > 0 {
				p["share"] = round((b-a)/win, 3)
			}
			if s.delivered > 0 {
				p["us_per_dlv"] = round((b-a)*1e6/float64(s.delivered), 3)
			}
			procs[name] = p
		}
		m["procs"] = procs
	}
	if len(s.slowest) > 1 {
		tl := make([]float64, len(s.slowest))
		for i, v := range s.slowest {
			tl[i] = round(float64(v)/1e6, 1)
		}
		m["slowest_ms_per_250ms"] = tl
	}
	if sendDur > 0 {
		// Busy share over the sending window; a window too short to measure (one message
		// in idle mode) is judged over the whole window up to its last delivery instead.
		busy := (s.ruSendEnd - s.ru0) / sendDur
		if sendDur < 0.5 && win > 0 {
			busy = (s.ru1 - s.ru0) / win
		}
		m["loadgen_cpu"] = round(busy, 3)
		m["loadgen_busy_flag"] = busy > busyLimit
		m["offered_per_s"] = round(float64(s.expected)/sendDur, 0)
		// Over the time the deliveries took, up to the last one: a server that falls behind
		// delivers part of the step after sending stops, and dividing by the sending time
		// alone would credit it with the offered rate, not the rate it delivered.
		dlvDur := sendDur
		if d := float64(s.lastRecv-s.startNs) / 1e9; s.lastRecv > 0 && d > dlvDur {
			dlvDur = d
		}
		m["delivered_per_s"] = round(float64(s.delivered)/dlvDur, 0)
	}
	if s.lastRecv > 0 {
		m["last_delivery_ms"] = round(float64(s.lastRecv-s.startNs)/1e6, 3)
	}
	m["loadgen_runq_wait_ms"] = round(float64(s.srv1.myWait-s.srv0.myWait)/1e6, 1)
	if s.srv0.ok && s.srv1.ok {
		m["server_runq_wait_ms"] = round(float64(s.srv1.waitNs-s.srv0.waitNs)/1e6, 1)
		cpu := s.srv1.cpuSec - s.srv0.cpuSec
		m["server_cpu_s"] = round(cpu, 3)
		if win > 0 {
			m["server_cpu_share"] = round(cpu/win, 3)
		}
		if s.delivered > 0 {
			m["server_us_per_dlv"] = round(cpu*1e6/float64(s.delivered), 3)
			if d := s.srv1.coreS - s.srv0.coreS; d > 0 {
				m["server_core_us_per_dlv"] = round(d*1e6/float64(s.delivered), 3)
			}
		}
		if win > 0 && s.srv1.coreS > 0 {
			m["server_core_busy"] = round((s.srv1.coreS-s.srv0.coreS)/win, 3)
		}
	}
	return m
}

func (g *gen) stepsJSON(steps []*step) []map[string]any {
	out := make([]map[string]any, 0, len(steps))
	for _, s := range steps {
		if s.endNs == 0 {
			s.endNs = g.now()
			s.ru1 = selfCPU()
			s.srv1 = g.sample()
			if s.sendEndNs == 0 {
				s.sendEndNs, s.ruSendEnd, s.srvSend = s.endNs, s.ru1, s.srv1
			}
		}
		out = append(out, s.json())
	}
	return out
}

func (g *gen) configMap() map[string]any {
	m := map[string]any{}
	flag.VisitAll(func(f *flag.Flag) { m[f.Name] = f.Value.String() })
	return m
}

func (g *gen) counters() map[string]any {
	return map[string]any{
		"clients_open":            g.nOpenRecv,
		"connect_failures":        g.connFail,
		"connect_fail_why":        g.failWhy,
		"unexpected_closes":       g.unexpClos,
		"sender_closes":           g.senderClo,
		"unexpected_close_why":    g.closeWhy,
		"duplicates_or_reordered": g.dups,
		"foreign_frames":          g.foreign,
		"unparsable_marks":        g.parseErr,
		"pings_answered":          g.pings,
		"binary_frames":           g.binary,
		"messages_sent":           g.gseq,
		"deliveries_expected":     g.totalExpected,
		"deliveries_received":     g.totalDelivered,
	}
}

func (g *gen) printResult(res map[string]any) {
	busy := false
	maxBusy := 0.0
	if steps, ok := res["steps"].([]map[string]any); ok {
		for _, s := range steps {
			if v, ok := s["loadgen_cpu"].(float64); ok && v > maxBusy {
				maxBusy = v
			}
		}
	}
	if maxBusy > busyLimit {
		busy = true
	}
	res["loadgen_cpu_max"] = maxBusy
	res["loadgen_busy_flag"] = busy
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(res); err != nil {
		fatal(err.Error())
	}
}

// ---------------------------------------------------------------- modes

func (g *gen) modeFixed() map[string]any {
	cs := g.setupClients(g.cfg.clients, g.cfg.senders)
	res := map[string]any{"connect_seconds": round(cs, 3)}
	var steps []*step
	if g.cfg.warmup > 0 {
		w := g.beginStep("warmup", g.cfg.rate)
		g.runFor(g.cfg.warmup)
		steps = append(steps, w)
	}
	s := g.beginStep("measure", g.cfg.rate)
	g.runFor(g.cfg.duration)
	g.endSending(s)
	steps = append(steps, s)
	g.drain(g.cfg.drain, 2, steps...)
	all := g.stepsJSON(steps)
	res["steps"] = all
	res["result"] = all[len(all)-1]
	return res
}

func passes(m map[string]any, p99Limit float64) bool {
	p99, _ := m["p99_ms"].(float64)
	lost, _ := m["lost"].(int64)
	offered, _ := m["offered_per_s"].(float64)
	target, _ := m["target_per_s"].(float64)
	return lost == 0 && p99 >= 0 && p99 <= p99Limit && offered >= 0.95*target
}

// loadgenLimited tells a step where the load generator, not the server, was the limit: it was
// more than 85% busy while the server's core still had room (a saturated server is the limit
// whatever the load generator's share).
func loadgenLimited(m map[string]any) bool {
	busy, _ := m["loadgen_busy_flag"].(bool)
	share, _ := m["server_core_busy"].(float64)
	if share <= 0 {
		share, _ = m["server_cpu_share"].(float64)
	}
	return busy && share < 0.95
}

func (g *gen) modeRamp() map[string]any {
	cs := g.setupClients(g.cfg.clients, g.cfg.senders)
	res := map[string]any{"connect_seconds": round(cs, 3)}
	g.ramp(res)
	return res
}

// modeSteady ramps to saturation, then sends at -rate for -duration in -window slices on the
// same connections: does p99 hold in every window once the server has been through a burst?
func (g *gen) modeSteady() map[string]any {
	cs := g.setupClients(g.cfg.clients, g.cfg.senders)
	res := map[string]any{"connect_seconds": round(cs, 3)}
	burst := map[string]any{}
	g.ramp(burst)
	res["ramp"] = burst
	g.runFor(1) // a pause after the burst (each step drained its backlog), then the warm-up
	steps := g.windows()
	g.drain(g.cfg.drain, 2, steps...)
	all := g.stepsJSON(steps)
	res["steps"] = all
	res["others"] = measured(all)
	var p99s []float64
	for _, m := range all {
		if m["name"] != "warmup" {
			p99s = append(p99s, m["p99_ms"].(float64))
		}
	}
	res["window_p99_ms"] = p99s
	return res
}

// ramp runs the ramp's steps on connected clients and puts its steps and best step in res.
func (g *gen) ramp(res map[string]any) {
	var all []map[string]any
	var best map[string]any
	stopWhy := "reached -ramp-max"
	runStep := func(rate float64) (map[string]any, bool) {
		s := g.beginStep(fmt.Sprintf("%.0f/s", rate), rate)
		g.runFor(g.cfg.rampStep)
		g.endSending(s)
		g.drain(math.Max(g.cfg.drain, 2*g.cfg.rampStep), 1.5, s)
		m := s.json()
		ok := passes(m, g.cfg.rampP99)
		m["pass"] = ok
		all = append(all, m)
		logf("ramp %-10s delivered %9.0f/s p99 %8.2f ms lost %d loadgen %.0f%% server %.2f us/dlv -> %v",
			s.name, m["delivered_per_s"], m["p99_ms"], m["lost"], 100*m["loadgen_cpu"].(float64), m["server_us_per_dlv"], ok)
		g.runFor(0.3)
		return m, ok
	}
	t0 := g.now()
	overBudget := func() bool {
		return float64(g.now()-t0)/1e9+g.cfg.rampStep > g.cfg.rampBudget
	}
	lo, hi := 0.0, 0.0
	for r := g.cfg.rampStart; r <= g.cfg.rampMax; r *= g.cfg.rampFactor {
		if overBudget() {
			stopWhy = "time budget"
			break
		}
		m, ok := runStep(r)
		if loadgenLimited(m) {
			stopWhy = "load generator above 85% busy"
			if ok {
				best = m
			}
			break
		}
		if !ok {
			hi = r
			stopWhy = "p99 above limit or loss"
			break
		}
		best, lo = m, r
	}
	if hi > 0 && lo > 0 {
		for i := 0; i < g.cfg.rampBisect && !overBudget(); i++ {
			mid := math.Sqrt(lo * hi)
			m, ok := runStep(mid)
			if loadgenLimited(m) {
				stopWhy = "load generator above 85% busy"
			}
			if ok {
				lo = mid
				if d, _ := m["delivered_per_s"].(float64); d > best["delivered_per_s"].(float64) {
					best = m
				}
			} else {
				hi = mid
			}
		}
	}
	res["steps"] = all
	res["stop_reason"] = stopWhy
	if best != nil {
		res["result"] = best
	}
	res["first_failing_rate"] = round(hi, 0)
}

func (g *gen) modeIdle() map[string]any {
	s0 := g.sample()
	ru0 := selfCPU()
	t0 := g.now()
	cs := g.setupClients(g.cfg.clients, 1)
	s1 := g.sample()
	n := len(g.clients)
	res := map[string]any{
		"connect_seconds":   round(cs, 3),
		"connections":       n,
		"connect_per_s":     round(float64(n)/cs, 0),
		"loadgen_cpu_setup": round((selfCPU()-ru0)/cs, 3),
	}
	sr := s1
	if len(g.greets) > 0 {
		// Every client's replies, as a reconnect storm ends: its upgrade and what it asked.
		end := g.now() + int64(60e9)
		g.loop(func(now int64) bool { return g.greeted >= n || now >= end })
		sr = g.sample()
		res["ready_seconds"] = round(float64(g.now()-t0)/1e9, 3)
		res["greeted"] = g.greeted
		res["greet_errors"] = g.greetErrs
	}
	g.runFor(g.cfg.settle)
	s2 := g.sample()
	if s0.ok && s2.ok && n > 0 {
		res["server_rss_kib_before"] = s0.rssKiB
		res["server_rss_kib_after"] = s2.rssKiB
		res["server_kib_per_conn"] = round(float64(s2.rssKiB-s0.rssKiB)/float64(n), 2)
		res["server_handshake_cpu_us"] = round((s1.cpuSec-s0.cpuSec)*1e6/float64(n), 1)
		if len(g.greets) > 0 && sr.ok {
			res["server_ready_cpu_us"] = round((sr.cpuSec-s0.cpuSec)*1e6/float64(n), 1)
		}
	}
	var steps []*step
	var lasts []float64
	complete := true
	for i := 0; i < g.cfg.idleMsgs; i++ {
		s := g.beginStep(fmt.Sprintf("msg %d", i+1), 0)
		g.sendOne(g.now())
		g.flushDirty()
		g.endSending(s)
		g.drain(10, 5, s)
		steps = append(steps, s)
		if s.delivered < s.expected {
			complete = false
		}
		if s.lastRecv > 0 {
			lasts = append(lasts, float64(s.lastRecv-s.startNs)/1e6)
		}
		g.runFor(0.3)
	}
	res["steps"] = g.stepsJSON(steps)
	res["last_delivery_ms"] = lasts
	if len(lasts) > 0 {
		sorted := append([]float64(nil), lasts...)
		sort.Float64s(sorted)
		res["last_delivery_ms_median"] = round(sorted[len(sorted)/2], 3)
		res["last_delivery_ms_first"] = round(lasts[0], 3)
	}
	res["all_delivered"] = complete
	return res
}

// windows sends at -rate for -duration, reported in -window slices after a warm-up.
func (g *gen) windows() []*step {
	var steps []*step
	if g.cfg.warmup > 0 {
		w := g.beginStep("warmup", g.cfg.rate)
		g.runFor(g.cfg.warmup)
		steps = append(steps, w)
	}
	left := g.cfg.duration
	for i := 1; left > 1e-9; i++ {
		d := math.Min(g.cfg.window, left)
		s := g.beginStep(fmt.Sprintf("window %d", i), g.cfg.rate)
		g.runFor(d)
		left -= d
		steps = append(steps, s)
	}
	g.endSending(g.cur)
	return steps
}

func measured(steps []map[string]any) map[string]any {
	// Totals over the windows (not the warm-up).
	var exp, dlv int64
	worstP99, maxMs := 0.0, 0.0
	for _, m := range steps {
		if m["name"] == "warmup" {
			continue
		}
		exp += int64(m["expected"].(uint64))
		dlv += int64(m["delivered"].(uint64))
		if v := m["p99_ms"].(float64); v > worstP99 {
			worstP99 = v
		}
		if v := m["max_ms"].(float64); v > maxMs {
			maxMs = v
		}
	}
	return map[string]any{"expected": exp, "delivered": dlv, "lost": exp - dlv, "worst_window_p99_ms": worstP99, "max_ms": maxMs}
}

func (g *gen) modeSlow() map[string]any {
	cs := g.setupClients(g.cfg.clients, g.cfg.senders)
	slow := g.connectMany(1, kSlow)[0]
	res := map[string]any{"connect_seconds": round(cs, 3), "slow_reader_connected": slow.st == sOpen}
	g.nextRSS = g.now()
	steps := g.windows()
	g.drain(g.cfg.drain, 2, steps...)
	g.nextRSS = 0
	all := g.stepsJSON(steps)
	res["steps"] = all
	res["others"] = measured(all)
	res["server_rss_series"] = g.rssSeries
	// Did the server drop the client that never read? Read what it holds: an end of stream
	// (or a reset) means the server closed it.
	dropped, got, why := false, 0, "still open after reading for 3 s"
	if slow.st == sOpen {
		end := g.now() + 3e9
		for g.now() < end {
			n, err := syscall.Read(slow.fd, g.rbuf)
			if n > 0 {
				got += n
				continue
			}
			if err == syscall.EAGAIN || err == syscall.EINTR {
				time.Sleep(time.Millisecond)
				continue
			}
			dropped, why = true, "read: "+errString(err)
			break
		}
		g.release(slow)
	}
	res["slow_reader"] = map[string]any{"dropped": dropped, "how": why, "bytes_read_at_end": got}
	return res
}

func (g *gen) modeChurn() map[string]any {
	cs := g.setupClients(g.cfg.clients, g.cfg.senders)
	res := map[string]any{"connect_seconds": round(cs, 3)}
	g.nextRSS = g.now()
	g.churnInterval = 1e9 / g.cfg.churnRate
	g.churnNext = float64(g.now())
	g.churnOn = true
	steps := g.windows()
	g.churnOn = false
	for _, c := range g.churners {
		if c.st == sOpen {
			g.churnClose(c)
		} else if c.st != sClosed {
			g.dropPending(c) // still connecting when the phase ended: not a failure
			g.release(c)
			g.churnAbandoned++
		}
	}
	g.churners = nil
	g.drain(g.cfg.drain, 2, steps...)
	g.nextRSS = 0
	all := g.stepsJSON(steps)
	res["steps"] = all
	res["others"] = measured(all)
	res["server_rss_series"] = g.rssSeries
	res["churn"] = map[string]any{
		"attempted":         g.churnTried,
		"opened":            g.churnOK,
		"failed":            g.churnFail,
		"skipped_at_max":    g.churnSkipped,
		"connecting_at_end": g.churnAbandoned,
		"connect_p50_ms":    round(g.churnConnect.pct(0.5), 3),
		"connect_p99_ms":    round(g.churnConnect.pct(0.99), 3),
		"connect_max_ms":    round(float64(g.churnConnect.maxNs)/1e6, 3),
	}
	return res
}

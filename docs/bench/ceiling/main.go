// Command ceiling is the benchmark yardstick for cache hits: a bare Fiber
// handler returning fixed bytes from memory.
//
//	ceiling [-bare] [-headers FILE] ADDR FILE CONTENT-TYPE [FILE CONTENT-TYPE]...
//
// The first file is served at /0, the second at /1, and so on. By default
// the server has image-proxy's default server settings (timeouts, buffer
// and connection limits), so the comparison is of the handlers alone: a
// read and a write timeout cost a deadline update per request. -bare
// leaves Fiber's defaults (no timeouts at all). -headers adds the
// "Name: value" lines of FILE to every response (image-proxy's header table
// for a hit, say), so both servers send the same response, not only the
// same body.
package main

import (
	"flag"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

func main() {
	bare := flag.Bool("bare", false, "Fiber's defaults instead of image-proxy's server settings")
	headerFile := flag.String("headers", "", "file of \"Name: value\" lines added to every response")
	flag.Parse()
	var extra [][2]string
	if *headerFile != "" {
		b, err := os.ReadFile(*headerFile)
		if err != nil {
			log.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ": "); ok {
				extra = append(extra, [2]string{k, v})
			}
		}
	}
	args := flag.Args()
	if len(args) < 3 || len(args)%2 != 1 {
		log.Fatal("usage: ceiling [-bare] ADDR FILE CONTENT-TYPE [FILE CONTENT-TYPE]...")
	}
	cfg := fiber.Config{DisableStartupMessage: true, Network: "tcp"}
	if !*bare {
		// The defaults of IMAGE_PROXY_READ_TIMEOUT, _WRITE_TIMEOUT,
		// _IDLE_TIMEOUT, _MAX_CONNECTIONS and _MAX_HEADER_BYTES (proxy.New).
		cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout = 10*time.Second, 60*time.Second, 75*time.Second
		cfg.Concurrency, cfg.ReadBufferSize, cfg.BodyLimit = 10000, 8192, 4<<10
	}
	app := fiber.New(cfg)
	for i := 1; i < len(args); i += 2 {
		body, err := os.ReadFile(args[i])
		if err != nil {
			log.Fatal(err)
		}
		ctype := args[i+1]
		app.Get("/"+strconv.Itoa(i/2), func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderContentType, ctype)
			for _, h := range extra {
				c.Set(h[0], h[1])
			}
			return c.Send(body)
		})
	}
	log.Fatal(app.Listen(args[0]))
}

// Command ceiling is the benchmark yardstick for cache hits: a bare Fiber
// handler returning fixed bytes from memory, with the same server settings
// image-proxy uses. Usage: ceiling ADDR FILE CONTENT-TYPE [FILE CONTENT-TYPE]...
// The first file is served at /0, the second at /1, and so on.
package main

import (
	"log"
	"os"
	"strconv"

	"github.com/gofiber/fiber/v2"
)

func main() {
	if len(os.Args) < 4 || len(os.Args)%2 != 0 {
		log.Fatal("usage: ceiling ADDR FILE CONTENT-TYPE [FILE CONTENT-TYPE]...")
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true, Network: "tcp"})
	for i := 2; i < len(os.Args); i += 2 {
		body, err := os.ReadFile(os.Args[i])
		if err != nil {
			log.Fatal(err)
		}
		ctype := os.Args[i+1]
		app.Get("/"+strconv.Itoa(i/2-1), func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderContentType, ctype)
			return c.Send(body)
		})
	}
	log.Fatal(app.Listen(os.Args[1]))
}

package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/cespare/xxhash/v2"
)

// A stored entry (a disk file, an S3 object) is a header followed by the
// value:
//
//	magic "IPC1" | payload length (8 bytes, big endian) | xxhash64 of payload (8 bytes) | payload
//
// so a tier that reads bytes back from outside the process can tell a
// whole, intact value from a truncated or damaged one.
const (
	entryMagic  = "IPC1"
	headerBytes = 4 + 8 + 8
)

// encodeEntry returns v behind its header, in a new slice.
func encodeEntry(v []byte) []byte {
	buf := make([]byte, headerBytes, headerBytes+len(v))
	copy(buf, entryMagic)
	binary.BigEndian.PutUint64(buf[4:], uint64(len(v)))
	binary.BigEndian.PutUint64(buf[12:], xxhash.Sum64(v))
	return append(buf, v...)
}

// verify returns the payload of raw (a sub-slice, no copy) when its header
// is whole and its length and checksum match.
func verify(raw []byte) ([]byte, bool) {
	if len(raw) < headerBytes || string(raw[:4]) != entryMagic {
		return nil, false
	}
	n := binary.BigEndian.Uint64(raw[4:])
	payload := raw[headerBytes:]
	if uint64(len(payload)) != n || xxhash.Sum64(payload) != binary.BigEndian.Uint64(raw[12:]) {
		return nil, false
	}
	return payload, true
}

// entryName is the file or object name of key: hex SHA-256, 64 characters,
// whatever bytes the key holds.
func entryName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

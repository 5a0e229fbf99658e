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
// whatever bytes the key holds; a key of SourceKey's gets its source's
// group in front ("<group>-<sha256>", 81 characters), so that every result
// of one source sits in one shard directory (disk) or under one prefix
// (S3), and Purge lists one directory or one prefix instead of scanning.
func entryName(key string) string {
	sum := sha256.Sum256([]byte(key))
	g := groupOf(key)
	if g == "" {
		return hex.EncodeToString(sum[:])
	}
	b := make([]byte, groupLen+1+2*len(sum))
	copy(b, g)
	b[groupLen] = '-'
	hex.Encode(b[groupLen+1:], sum[:])
	return string(b)
}

// groupLen is the length of a source group: 16 hex characters (64 bits) of
// SHA-256, so an operator computes it with sha256sum and two sources
// share a group only by a 1-in-2^64 chance (whose cost is a purge
// removing a neighbour's results too, which are rendered again).
const groupLen = 16

// SourceGroup names the group of every stored result of the source at
// path rel (relative to the root or the bucket prefix, as requests name
// it): the first 16 hex characters of its SHA-256. It is also the tag the
// responses carry in Surrogate-Key and Cache-Tag, so a CDN purges by the
// same name:
//
//	printf '%s' photos/cat.jpg | sha256sum | cut -c1-16
func SourceGroup(rel string) string {
	var b [GroupPrefixLen]byte
	return string(AppendGroupPrefix(b[:0], rel)[:groupLen])
}

// SourceKey is the tier key of a result of the source at rel whose
// variant key (the one the ETag derives from) is variant: the source's
// group, a '/', then variant. The group decides where the result is
// stored; the ETag does not see it.
func SourceKey(rel, variant string) string {
	var b [GroupPrefixLen]byte
	return string(AppendGroupPrefix(b[:0], rel)) + variant
}

// GroupPrefixLen is the length of the group and '/' that start a
// SourceKey.
const GroupPrefixLen = groupLen + 1

// AppendGroupPrefix appends rel's group and a '/' to dst: the start of
// its SourceKeys, for a caller that builds the rest in the same buffer
// (request.Variant.KeyAfter).
func AppendGroupPrefix(dst []byte, rel string) []byte {
	sum := sha256.Sum256([]byte(rel))
	dst = hex.AppendEncode(dst, sum[:groupLen/2])
	return append(dst, '/')
}

// groupOf is the group of a SourceKey, or "" for a key made otherwise.
func groupOf(key string) string {
	if len(key) <= groupLen || key[groupLen] != '/' {
		return ""
	}
	for i := range groupLen {
		c := key[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
	}
	return key[:groupLen]
}

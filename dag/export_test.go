package dag

import "crypto/sha256"

// WrapLoads makes f call before(path) on the goroutine that loads a file,
// as the load begins, and after(path) once it is over.
func WrapLoads(f *Folder, before, after func(path string)) {
	load := f.load
	f.load = func(path string, oldHash *[sha256.Size]byte) loaded {
		before(path)
		defer after(path)
		return load(path, oldHash)
	}
}

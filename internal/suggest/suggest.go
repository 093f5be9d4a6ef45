// Package suggest finds the known name closest to a mistyped one, for
// "did you mean" hints of the API and the CLI.
package suggest

// maxDistance is the most edits a suggestion may be away.
const maxDistance = 2

// Closest returns the name in known nearest to s by edit distance, at most
// two edits away (the first of equals), or "" when none is.
func Closest(s string, known []string) string {
	best, bestDist := "", maxDistance+1
	for _, k := range known {
		if max(len(s)-len(k), len(k)-len(s)) >= bestDist || k == s {
			continue // the distance is at least the difference in length
		}
		if d := Distance(s, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// DidYouMean is ` (did you mean "x"?)` for the closest of known, or "".
func DidYouMean(s string, known []string) string {
	if c := Closest(s, known); c != "" {
		return ` (did you mean "` + c + `"?)`
	}
	return ""
}

// Distance is the number of edits that turn a into b, in bytes: inserting,
// deleting or replacing a byte, or swapping two adjacent ones ("jion" is one
// edit from "join"), each substring edited at most once (the optimal string
// alignment distance).
func Distance(a, b string) int {
	// Three rows of the table: i-2, i-1 and i.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

package domain

import (
	"cmp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// matchKind ranks how well a text contains the query; lower is better.
type matchKind int

const (
	matchWord      matchKind = iota // the query is a whole word (or phrase) of the text
	matchPrefix                     // a word of the text starts with the query
	matchSubstring                  // the query is inside a word
	noMatch
)

// field is where a query matched, best first.
type field int

const (
	inName field = iota
	inTags       // a category or an attribute value
	inDescription
)

// rank orders search results: a name match beats a category or attribute match,
// which beats a description match; within each, whole word beats prefix beats
// substring.
type rank struct {
	in   field
	kind matchKind
}

func (r rank) score() int { return int(r.in)*int(noMatch) + int(r.kind) }

// Search returns a page of the products whose name, categories, attribute values or
// description contain query, case-insensitively: name matches first, then category
// and attribute matches ("coffee" finds the whole coffee category, "ceramic" the
// ceramic things), then description matches; within each, whole-word before prefix
// before substring matches, then by name and id, so the order is deterministic. An empty query
// matches nothing. It returns an error wrapping ErrInvalidPageToken for a token not
// issued for this same query.
func (c *Catalog) Search(query string, pageSize int, pageToken string) (Page, error) {
	q := strings.ToLower(strings.Join(strings.Fields(query), " "))
	type hit struct {
		p     Product
		score int
	}
	var hits []hit
	if q != "" {
		for i, p := range c.products {
			if r, ok := rankOf(c.lower[i], q); ok {
				hits = append(hits, hit{p, r.score()})
			}
		}
	}
	// c.products is already ordered by name then id; a stable sort keeps that as
	// the tie-breaker.
	slices.SortStableFunc(hits, func(a, b hit) int { return cmp.Compare(a.score, b.score) })
	matched := make([]Product, len(hits))
	for i, h := range hits {
		matched[i] = h.p
	}
	return c.page(matched, queryKey("search", q), pageSize, pageToken)
}

func rankOf(l lowered, q string) (rank, bool) {
	for _, f := range []struct {
		in   field
		text string
	}{{inName, l.name}, {inTags, l.tags}, {inDescription, l.description}} {
		if k := matchIn(f.text, q); k != noMatch {
			return rank{in: f.in, kind: k}, true
		}
	}
	return rank{}, false
}

// matchIn returns the best match of q (lower case) in text (lower case) over all
// occurrences.
func matchIn(text, q string) matchKind {
	best := noMatch
	for from := 0; from <= len(text)-len(q); {
		i := strings.Index(text[from:], q)
		if i < 0 {
			break
		}
		i += from
		startsWord := i == 0 || !isWordRune(lastRune(text[:i]))
		endsWord := i+len(q) == len(text) || !isWordRune(firstRune(text[i+len(q):]))
		k := matchSubstring
		switch {
		case startsWord && endsWord:
			return matchWord
		case startsWord:
			k = matchPrefix
		}
		best = min(best, k)
		_, size := utf8.DecodeRuneInString(text[i:])
		from = i + size
	}
	return best
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func lastRune(s string) rune {
	r, _ := utf8.DecodeLastRuneInString(s)
	return r
}

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

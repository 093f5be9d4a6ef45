package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
)

// Authentication data: users who sign in to the web UI with a password,
// API tokens, and the browser sessions of signed-in users (migration 4).
//
// No secret is stored as it was given: a password is kept as its bcrypt
// hash, a token and a session id as the SHA-256 of their random part. The
// latter need no slow hash, since they are 256 random bits and cannot be
// guessed from a dictionary; SHA-256 only makes a copy of the file useless
// for signing in.
//
// These buckets share nothing with run state, so the HTTP API writes them
// (through the store's one writer, see [Store.Commit]) although the
// scheduler owns everything else.
var (
	bucketUsers    = []byte("users")    // name -> User
	bucketTokens   = []byte("tokens")   // id -> Token
	bucketSessions = []byte("sessions") // sha256(session id) -> Session
)

// Roles, weakest first: each may do everything the ones before it may.
const (
	RoleViewer   = "viewer"   // reads everything
	RoleOperator = "operator" // also triggers, clears, pauses and backfills
	RoleAdmin    = "admin"    // also manages pools, users and tokens
)

// Roles lists the roles, weakest first.
var Roles = []string{RoleViewer, RoleOperator, RoleAdmin}

// Errors of authentication that callers branch on, with errors.Is.
var (
	// ErrBadCredentials reports a wrong name or password, or an unknown,
	// revoked or expired token or session. It never says which, so that
	// an answer does not tell which user names exist.
	ErrBadCredentials = errors.New("invalid credentials")
	// ErrNoAdmin reports a change that would leave users or tokens but no
	// admin among them, so that nobody could manage them any more.
	ErrNoAdmin = errors.New("no admin would be left")
	// ErrInvalid reports a name, role or password that is not acceptable;
	// the error says why.
	ErrInvalid = errors.New("invalid")
)

// Password and name limits.
const (
	// MinPasswordLen is the fewest characters a password may have.
	MinPasswordLen = 8
	// MaxPasswordBytes is the most bytes a password may have: bcrypt
	// ignores everything past 72, and silently accepting a longer one
	// would make its end meaningless.
	MaxPasswordBytes = 72
	maxNameLen       = 64
)

// namePattern is what user and token names look like: readable in a
// table, safe in a URL path, and able to hold an e-mail address.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@+-]*$`)

// User is a person who signs in to the web UI.
type User struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// PasswordHash is the bcrypt hash of the password.
	PasswordHash []byte    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

// Token is an API token. The token itself (see [Store.CreateToken]) is
// shown once and never stored.
type Token struct {
	// ID is the public part of the token, by which it is listed and
	// revoked.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Role is the token's role. A user's token (User set) stores none: it
	// has its user's role, read when the token is checked or listed.
	Role string `json:"role"`
	// User names the user a token of `kiln login` acts as
	// ([Store.CreateUserToken]); "" for a token of its own.
	User string `json:"user,omitempty"`
	// SecretHash is the SHA-256 of the token's secret part.
	SecretHash []byte    `json:"secret_hash"`
	CreatedAt  time.Time `json:"created_at"`
	// LastUsedAt is when the token last authenticated a request, to the
	// minute; nil when never.
	LastUsedAt *time.Time `json:"last_used_at"`
}

// Session is a signed-in browser.
type Session struct {
	User string `json:"user"`
	// Role is the user's role, read from the user when the session is
	// checked: a role change applies to open sessions at once.
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// tokenPrefix starts every token, so that secret scanners and people can
// tell a Kiln token when they see one.
const tokenPrefix = "kiln_"

// Token and session sizes.
const (
	tokenIDBytes     = 8  // 16 hex digits: unique enough to name a token
	tokenSecretBytes = 32 // 256 bits
	sessionIDBytes   = 32
)

// lastUsedGranularity is how stale a token's LastUsedAt may get: it is
// written at most this often, so that a busy token does not cost a disk
// write per request.
const lastUsedGranularity = time.Minute

// ValidRole reports whether role is one of Roles.
func ValidRole(role string) bool {
	for _, r := range Roles {
		if r == role {
			return true
		}
	}
	return false
}

// CheckName reports why name cannot name a user or a token, or nil.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalid)
	case len(name) > maxNameLen:
		return fmt.Errorf("%w: name %.20q... is longer than %d characters", ErrInvalid, name, maxNameLen)
	case !namePattern.MatchString(name):
		return fmt.Errorf("%w: name %q: want letters, digits and _ . @ + - (starting with a letter or digit)", ErrInvalid, name)
	}
	return nil
}

// CheckPasswordPolicy reports why password is not acceptable, or nil.
func CheckPasswordPolicy(password string) error {
	switch {
	case utf8.RuneCountInString(password) < MinPasswordLen:
		return fmt.Errorf("%w: password shorter than %d characters", ErrInvalid, MinPasswordLen)
	case len(password) > MaxPasswordBytes:
		return fmt.Errorf("%w: password longer than %d bytes", ErrInvalid, MaxPasswordBytes)
	}
	return nil
}

// firstError returns the first of errs that is not nil.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func checkRole(role string) error {
	if !ValidRole(role) {
		return fmt.Errorf("%w: role %q: want one of %s", ErrInvalid, role, strings.Join(Roles, ", "))
	}
	return nil
}

// SetPasswordCost sets the bcrypt cost of the password hashes the store
// makes from now on; the default is bcrypt.DefaultCost. Tests lower it:
// one hash at the default cost takes most of a second under the race
// detector.
func (s *Store) SetPasswordCost(cost int) {
	s.passwordCost.Store(int32(min(max(cost, bcrypt.MinCost), bcrypt.MaxCost)))
}

func (s *Store) bcryptCost() int {
	if c := s.passwordCost.Load(); c != 0 {
		return int(c)
	}
	return bcrypt.DefaultCost
}

// dummyHashes holds one bcrypt hash per cost, compared against when a user
// does not exist so that a wrong name takes as long as a wrong password.
var dummyHashes sync.Map // int -> []byte

func dummyHash(cost int) []byte {
	if h, ok := dummyHashes.Load(cost); ok {
		return h.([]byte)
	}
	h, err := bcrypt.GenerateFromPassword([]byte("kiln: no such user"), cost)
	if err != nil {
		panic(err) // the cost is in range and the password short
	}
	dummyHashes.Store(cost, h)
	return h
}

// AuthConfigured reports whether any user or token exists. Until one does,
// the server answers only requests from its own machine and asks nobody
// who they are.
func (s *Store) AuthConfigured() (bool, error) {
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		ok = !empty(tx.Bucket(bucketUsers)) || !empty(tx.Bucket(bucketTokens))
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("reading users and tokens: %w", err)
	}
	return ok, nil
}

func empty(b *bolt.Bucket) bool {
	k, _ := b.Cursor().First()
	return k == nil
}

// update runs fn in a write transaction of the store's writer (see
// [Store.Commit]). fn may run more than once, when a transaction it shares
// with other batches is retried, so it must only read and write tx.
func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	apply := func(tx *bolt.Tx) (bool, error) { return true, fn(tx) }
	return s.Commit(ctx, &Batch{ops: []op{{apply: apply}}})
}

// AddUser creates a user with a password; it fails with an error wrapping
// ErrConflict when the name is taken, ErrInvalid for a bad name, role or
// password, and ErrNoAdmin when it would be the first user or token and is
// not an admin.
func (s *Store) AddUser(ctx context.Context, name, role, password string, now time.Time) (*User, error) {
	if err := firstError(CheckName(name), checkRole(role), CheckPasswordPolicy(password)); err != nil {
		return nil, fmt.Errorf("adding user: %w", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.bcryptCost())
	if err != nil {
		return nil, fmt.Errorf("adding user %s: hashing the password: %w", name, err)
	}
	u := &User{Name: name, Role: role, PasswordHash: hash, CreatedAt: now.UTC()}
	val, err := json.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("encoding user %s: %w", name, err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		if users.Get([]byte(name)) != nil {
			return fmt.Errorf("user %s already exists: %w", name, ErrConflict)
		}
		if role != RoleAdmin && !hasAdmin(tx, nil, nil) {
			return fmt.Errorf("the first user or token must have the admin role, so that someone can manage the others: %w", ErrNoAdmin)
		}
		return put(users, []byte(name), val)
	})
	if err != nil {
		return nil, fmt.Errorf("adding user %s: %w", name, err)
	}
	return u, nil
}

// Users returns every user, by name.
func (s *Store) Users() ([]*User, error) {
	var out []*User
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			u := new(User)
			if err := json.Unmarshal(v, u); err != nil {
				return fmt.Errorf("decoding user %s: %w", k, err)
			}
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return out, nil
}

// DeleteUser deletes a user, ends their sessions and revokes their tokens. It fails with an
// error wrapping ErrNotFound for an unknown user, and ErrNoAdmin when the
// user is the last admin and other users or tokens remain. Deleting the
// very last user or token turns authentication off.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		v := users.Get([]byte(name))
		if v == nil {
			return fmt.Errorf("user %s: %w", name, ErrNotFound)
		}
		var u User
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("decoding user %s: %w", name, err)
		}
		if u.Role == RoleAdmin && !hasAdmin(tx, []byte(name), nil) && hasCredential(tx, []byte(name), nil) {
			return fmt.Errorf("%s is the last admin, and other users or tokens remain: add another admin first: %w", name, ErrNoAdmin)
		}
		if err := del(users, []byte(name)); err != nil {
			return err
		}
		if err := deleteUserTokens(tx, name); err != nil {
			return err
		}
		return deleteSessions(tx, func(ss *Session) bool { return ss.User == name })
	})
	if err != nil {
		return fmt.Errorf("deleting user %s: %w", name, err)
	}
	return nil
}

// UserChange is a change to a user: a field left nil is kept.
type UserChange struct {
	Role     *string
	Password *string
}

// UpdateUser changes a user's role or password, and ends their sessions,
// so that the next request signs in with the new role or password; a new
// password also revokes their tokens (kiln login), which take a new role
// as it is. It
// fails with an error wrapping ErrNotFound for an unknown user, ErrInvalid
// for a bad role or password or an empty change, and ErrNoAdmin when it
// would take the admin role from the last admin while other users or
// tokens remain.
func (s *Store) UpdateUser(ctx context.Context, name string, ch UserChange) (*User, error) {
	var hash []byte
	if ch.Role != nil {
		if err := checkRole(*ch.Role); err != nil {
			return nil, fmt.Errorf("updating user %s: %w", name, err)
		}
	}
	if ch.Password != nil {
		if err := CheckPasswordPolicy(*ch.Password); err != nil {
			return nil, fmt.Errorf("updating user %s: %w", name, err)
		}
		var err error
		if hash, err = bcrypt.GenerateFromPassword([]byte(*ch.Password), s.bcryptCost()); err != nil {
			return nil, fmt.Errorf("updating user %s: hashing the password: %w", name, err)
		}
	}
	u := new(User)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		v := users.Get([]byte(name))
		if v == nil {
			return fmt.Errorf("user %s: %w", name, ErrNotFound)
		}
		if err := json.Unmarshal(v, u); err != nil {
			return fmt.Errorf("decoding user %s: %w", name, err)
		}
		if ch.Role == nil && ch.Password == nil {
			return fmt.Errorf("nothing to change: give a role, a password or both: %w", ErrInvalid)
		}
		if ch.Role != nil && *ch.Role != RoleAdmin && u.Role == RoleAdmin &&
			!hasAdmin(tx, []byte(name), nil) && hasCredential(tx, []byte(name), nil) {
			return fmt.Errorf("%s is the last admin, and other users or tokens remain: make another admin first: %w", name, ErrNoAdmin)
		}
		if ch.Role != nil {
			u.Role = *ch.Role
		}
		if hash != nil {
			u.PasswordHash = hash
		}
		val, err := json.Marshal(u)
		if err != nil {
			return fmt.Errorf("encoding user %s: %w", name, err)
		}
		if err := put(users, []byte(name), val); err != nil {
			return err
		}
		if hash != nil {
			if err := deleteUserTokens(tx, name); err != nil {
				return err
			}
		}
		return deleteSessions(tx, func(ss *Session) bool { return ss.User == name })
	})
	if err != nil {
		return nil, fmt.Errorf("updating user %s: %w", name, err)
	}
	return u, nil
}

// CheckPassword returns the user with name if password is theirs, and an
// error wrapping ErrBadCredentials otherwise.
func (s *Store) CheckPassword(name, password string) (*User, error) {
	u := new(User)
	err := s.get(bucketUsers, []byte(name), u)
	switch {
	case errors.Is(err, ErrNotFound):
		// Spend the time a real check takes, so that timing does not tell
		// which names exist.
		_ = bcrypt.CompareHashAndPassword(dummyHash(s.bcryptCost()), []byte(password))
		return nil, ErrBadCredentials
	case err != nil:
		return nil, fmt.Errorf("reading user %s: %w", name, err)
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)) != nil {
		return nil, ErrBadCredentials
	}
	return u, nil
}

// CreateToken creates an API token and returns it with the token itself,
// kiln_ID_SECRET, which is not stored and cannot be shown again. Errors
// are as AddUser's.
func (s *Store) CreateToken(ctx context.Context, name, role string, now time.Time) (*Token, string, error) {
	if err := firstError(CheckName(name), checkRole(role)); err != nil {
		return nil, "", fmt.Errorf("creating token: %w", err)
	}
	t, secret, err := s.putToken(ctx, &Token{Name: name, Role: role, CreatedAt: now.UTC()}, func(tx *bolt.Tx, _ *Token) error {
		if role != RoleAdmin && !hasAdmin(tx, nil, nil) {
			return fmt.Errorf("the first user or token must have the admin role, so that someone can manage the others: %w", ErrNoAdmin)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("creating token %s: %w", name, err)
	}
	return t, secret, nil
}

// CreateUserToken creates an API token that acts as a user, with the
// user's role as it is when the token is used, and returns it with the
// token itself, as CreateToken does. It is what `kiln login` stores. The
// token is revoked when its user is deleted or their password changes.
// It fails with an error wrapping ErrNotFound for an unknown user, and
// ErrInvalid for a bad name.
func (s *Store) CreateUserToken(ctx context.Context, user, name string, now time.Time) (*Token, string, error) {
	if err := CheckName(name); err != nil {
		return nil, "", fmt.Errorf("creating token: %w", err)
	}
	t, secret, err := s.putToken(ctx, &Token{Name: name, User: user, CreatedAt: now.UTC()}, userRole)
	if err != nil {
		return nil, "", fmt.Errorf("creating token %s for user %s: %w", name, user, err)
	}
	return t, secret, nil
}

// putToken gives t a new id and secret and stores it as it is then, once
// check, run in the write transaction, allows it (check may fill in t for
// the caller: a user's token gets its role, which is not stored). It
// returns t and the token itself, kiln_ID_SECRET.
func (s *Store) putToken(ctx context.Context, t *Token, check func(tx *bolt.Tx, t *Token) error) (*Token, string, error) {
	t.ID = hex.EncodeToString(randomBytes(tokenIDBytes))
	secret := hex.EncodeToString(randomBytes(tokenSecretBytes))
	sum := sha256.Sum256([]byte(secret))
	t.SecretHash = sum[:]
	val, err := json.Marshal(t)
	if err != nil {
		return nil, "", fmt.Errorf("encoding token: %w", err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		tokens := tx.Bucket(bucketTokens)
		if tokens.Get([]byte(t.ID)) != nil {
			return fmt.Errorf("token id %s exists: %w", t.ID, ErrConflict) // 64 random bits: never in practice
		}
		if err := check(tx, t); err != nil {
			return err
		}
		return put(tokens, []byte(t.ID), val)
	})
	if err != nil {
		return nil, "", err
	}
	return t, tokenPrefix + t.ID + "_" + secret, nil
}

// userRole sets the Role of a user's token to the user's role; it fails
// with ErrNotFound when the user is gone.
func userRole(tx *bolt.Tx, t *Token) error {
	if t.User == "" {
		return nil
	}
	v := tx.Bucket(bucketUsers).Get([]byte(t.User))
	if v == nil {
		return fmt.Errorf("user %s: %w", t.User, ErrNotFound)
	}
	var u User
	if err := json.Unmarshal(v, &u); err != nil {
		return fmt.Errorf("decoding user %s: %w", t.User, err)
	}
	t.Role = u.Role
	return nil
}

// Tokens returns every token, oldest first; a user's token with the
// user's role.
func (s *Store) Tokens() ([]*Token, error) {
	var out []*Token
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			t := new(Token)
			if err := json.Unmarshal(v, t); err != nil {
				return fmt.Errorf("decoding token %s: %w", k, err)
			}
			if err := userRole(tx, t); err != nil {
				return nil // its user is gone, and it authenticates nobody
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// DeleteToken revokes a token. Errors are as DeleteUser's.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		tokens := tx.Bucket(bucketTokens)
		v := tokens.Get([]byte(id))
		if v == nil || id == "" {
			return fmt.Errorf("token %s: %w", id, ErrNotFound)
		}
		var t Token
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("decoding token %s: %w", id, err)
		}
		if t.Role == RoleAdmin && !hasAdmin(tx, nil, []byte(id)) && hasCredential(tx, nil, []byte(id)) {
			return fmt.Errorf("token %s is the last admin, and other users or tokens remain: add another admin first: %w", id, ErrNoAdmin)
		}
		return del(tokens, []byte(id))
	})
	if err != nil {
		return fmt.Errorf("revoking token %s: %w", id, err)
	}
	return nil
}

// CheckToken returns the token that token (kiln_ID_SECRET) is, a user's
// token with the user's current role, or an error wrapping
// ErrBadCredentials. It records when the token was used, to the minute.
func (s *Store) CheckToken(ctx context.Context, token string, now time.Time) (*Token, error) {
	id, secret, ok := splitToken(token)
	if !ok {
		return nil, ErrBadCredentials
	}
	t := new(Token)
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, t); err != nil {
			return err
		}
		return userRole(tx, t)
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrBadCredentials
	case err != nil:
		return nil, fmt.Errorf("reading token %s: %w", id, err)
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], t.SecretHash) != 1 {
		return nil, ErrBadCredentials
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= lastUsedGranularity {
		// Best effort: a token that cannot record its use still
		// authenticates, as a failed write here says nothing about it.
		used := now.UTC()
		_ = s.touchToken(ctx, id, used)
		t.LastUsedAt = &used
	}
	return t, nil
}

func (s *Store) touchToken(ctx context.Context, id string, now time.Time) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		tokens := tx.Bucket(bucketTokens)
		v := tokens.Get([]byte(id))
		if v == nil {
			return nil // revoked meanwhile
		}
		var t Token
		if err := json.Unmarshal(v, &t); err != nil {
			return err
		}
		t.LastUsedAt = &now
		val, err := json.Marshal(&t)
		if err != nil {
			return err
		}
		return put(tokens, []byte(id), val)
	})
}

// splitToken splits kiln_ID_SECRET, checking the parts' form.
func splitToken(token string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 2*tokenIDBytes || len(secret) != 2*tokenSecretBytes || !isHex(id) || !isHex(secret) {
		return "", "", false
	}
	return id, secret, true
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// CreateSession signs a user in for ttl and returns the session id, the
// cookie's value, which is not stored. It also removes expired sessions.
// It fails with an error wrapping ErrNotFound for an unknown user.
func (s *Store) CreateSession(ctx context.Context, user string, ttl time.Duration, now time.Time) (string, *Session, error) {
	id := base64.RawURLEncoding.EncodeToString(randomBytes(sessionIDBytes))
	k := sessionKey(id)
	ss := &Session{User: user, CreatedAt: now.UTC(), ExpiresAt: now.Add(ttl).UTC()}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var u User
		v := tx.Bucket(bucketUsers).Get([]byte(user))
		if v == nil {
			return fmt.Errorf("user %s: %w", user, ErrNotFound)
		}
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("decoding user %s: %w", user, err)
		}
		ss.Role = u.Role
		if err := deleteSessions(tx, func(old *Session) bool { return !now.Before(old.ExpiresAt) }); err != nil {
			return err
		}
		val, err := json.Marshal(ss)
		if err != nil {
			return err
		}
		return put(tx.Bucket(bucketSessions), k, val)
	})
	if err != nil {
		return "", nil, fmt.Errorf("creating a session for %s: %w", user, err)
	}
	return id, ss, nil
}

// CheckSession returns the session with id, with its user's current role,
// or an error wrapping ErrBadCredentials when there is no such session or
// it has expired.
func (s *Store) CheckSession(id string, now time.Time) (*Session, error) {
	if id == "" {
		return nil, ErrBadCredentials
	}
	ss := new(Session)
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSessions).Get(sessionKey(id))
		if v == nil {
			return ErrBadCredentials
		}
		if err := json.Unmarshal(v, ss); err != nil {
			return fmt.Errorf("decoding session: %w", err)
		}
		uv := tx.Bucket(bucketUsers).Get([]byte(ss.User))
		if uv == nil {
			return ErrBadCredentials
		}
		var u User
		if err := json.Unmarshal(uv, &u); err != nil {
			return fmt.Errorf("decoding user %s: %w", ss.User, err)
		}
		ss.Role = u.Role
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !now.Before(ss.ExpiresAt) {
		return nil, ErrBadCredentials
	}
	return ss, nil
}

// DeleteSession signs a session out; an unknown session is no error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	k := sessionKey(id)
	return s.update(ctx, func(tx *bolt.Tx) error {
		return del(tx.Bucket(bucketSessions), k)
	})
}

func sessionKey(id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return sum[:]
}

// deleteSessions deletes the sessions for which drop is true.
func deleteSessions(tx *bolt.Tx, drop func(*Session) bool) error {
	b := tx.Bucket(bucketSessions)
	var doomed [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var ss Session
		if json.Unmarshal(v, &ss) != nil || drop(&ss) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := del(b, k); err != nil {
			return err
		}
	}
	return nil
}

// deleteUserTokens deletes the tokens that act as user.
func deleteUserTokens(tx *bolt.Tx, user string) error {
	b := tx.Bucket(bucketTokens)
	var doomed [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var t struct {
			User string `json:"user"`
		}
		if json.Unmarshal(v, &t) == nil && t.User == user {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := del(b, k); err != nil {
			return err
		}
	}
	return nil
}

// hasAdmin reports whether an admin user or token exists other than the
// user and token named (nil for none).
func hasAdmin(tx *bolt.Tx, exceptUser, exceptToken []byte) bool {
	return anyRole(tx.Bucket(bucketUsers), exceptUser, RoleAdmin) ||
		anyRole(tx.Bucket(bucketTokens), exceptToken, RoleAdmin)
}

// hasCredential reports whether a user or token exists other than the
// user and token named (nil for none).
func hasCredential(tx *bolt.Tx, exceptUser, exceptToken []byte) bool {
	return anyRole(tx.Bucket(bucketUsers), exceptUser, "") ||
		anyRole(tx.Bucket(bucketTokens), exceptToken, "")
}

// anyRole reports whether b holds a user or token other than except with
// the role ("" for any). A user's token does not count: it stands and
// falls with its user. Both are few, so a scan is fine.
func anyRole(b *bolt.Bucket, except []byte, role string) bool {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if except != nil && bytes.Equal(k, except) {
			continue
		}
		var r struct {
			Role string `json:"role"`
			User string `json:"user"`
		}
		if json.Unmarshal(v, &r) != nil {
			if role == "" {
				return true
			}
			continue
		}
		if r.User == "" && (role == "" || r.Role == role) {
			return true
		}
	}
	return false
}

// randomBytes returns n bytes from the system's secure random source,
// which never fails on the systems Go supports.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// The static side of the workload: organisation, agents and gateway endpoints.

type team struct {
	name, costCenter string
}

type user struct {
	email string
	team  int
	// inOrg is false for the users deliberately left out of org.csv.
	inOrg bool
}

// Log kinds: how an agent records its requests.
const (
	logPayload = iota // inference (payload) table only
	logTraces         // MLflow traces only
	logBoth           // both, describing the same requests
)

// Tag kinds carried by a gateway call.
const (
	tagNone = iota
	tagTraceID
	tagTraceparent
	tagRequestID
	tagEndUser
)

// model is a foundation model as the gateway names it.
type model struct {
	name        string
	embedding   bool
	msPerToken  float64 // output decode speed
	cacheRead   float64 // chance a later call in a request reads the prompt cache
	cacheCreate bool    // reports cache creation (Anthropic-style caching)
	reasoning   float64 // typical share of output spent on reasoning
	apiType     string
}

// Models, with the destination_model values the task fixes.
var models = []model{
	{name: "claude-sonnet-4-5", msPerToken: 18, cacheRead: 0.7, cacheCreate: true, reasoning: 0.1, apiType: "anthropic/v1/messages"},
	{name: "gpt-5", msPerToken: 22, cacheRead: 0.5, reasoning: 0.55, apiType: "mlflow/v1/chat/completions"},
	{name: "gpt-5-mini", msPerToken: 9, cacheRead: 0.5, reasoning: 0.35, apiType: "mlflow/v1/chat/completions"},
	{name: "meta-llama-3.3-70b-instruct", msPerToken: 14, apiType: "mlflow/v1/chat/completions"},
	{name: "gemini-2-5-flash", msPerToken: 6, cacheRead: 0.3, reasoning: 0.2, apiType: "mlflow/v1/chat/completions"},
	{name: "bge-large-en", embedding: true, apiType: "mlflow/v1/embeddings"},
}

const (
	mClaude = iota
	mGPT5
	mGPT5Mini
	mLlama
	mGemini
	mBGE
)

// gatewayEndpoint is one AI Gateway endpoint; there is one per model.
type gatewayEndpoint struct {
	idx            int
	model          *model
	id, name       string
	destType       string
	destName       string
	destID         string
	servedEntityID string // the legacy serving endpoint's served entity
	tags           [][2]string
	tagsJSON       []byte
}

// archetype is the shape of one kind of agent.
type archetype struct {
	name string
	logs int
	// Request duration: log-normal median and spread, in seconds.
	medianS, sigma float64
	// callGapS is the mean time between gateway calls, which sets fan-out.
	callGapS    float64
	models      []int
	modelWeight []float64
	streamShare float64
	userAgent   string
	project     string
	// harmless is the share of calls carrying project/team tags.
	harmless float64
	// weight is the agent's relative traffic before hot agents are boosted.
	weight float64
}

// Archetypes in the order agents are created. Hot agents take the first
// slots; see plan.go for how traffic and tagging follow from these.
var archetypes = []archetype{
	{name: "support-bot", logs: logPayload, medianS: 18, sigma: 0.75, callGapS: 2.6,
		models: []int{mClaude, mGPT5Mini, mBGE}, modelWeight: []float64{0.5, 0.3, 0.2},
		streamShare: 0.35, userAgent: "langchain-databricks/0.9.2 OpenAI/Python 1.99.9", project: "customer-support", harmless: 0.6, weight: 1},
	{name: "sql-copilot", logs: logTraces, medianS: 9, sigma: 0.7, callGapS: 2.0,
		models: []int{mGPT5, mGPT5Mini}, modelWeight: []float64{0.55, 0.45},
		streamShare: 0.2, userAgent: "OpenAI/Python 1.99.9", project: "analytics", harmless: 0.3, weight: 1},
	{name: "research-agent", logs: logBoth, medianS: 40, sigma: 0.6, callGapS: 4.5,
		models: []int{mClaude, mGPT5, mGemini, mBGE}, modelWeight: []float64{0.4, 0.3, 0.2, 0.1},
		streamShare: 0.15, userAgent: "Anthropic/Python 0.64.0", project: "research", harmless: 1, weight: 0.5},
	{name: "doc-qa", logs: logPayload, medianS: 2.5, sigma: 0.6, callGapS: 0.35,
		models: []int{mLlama, mBGE}, modelWeight: []float64{0.55, 0.45},
		streamShare: 0.5, userAgent: "databricks-sdk-py/0.62.0", project: "knowledge-base", harmless: 0, weight: 0.35},
	{name: "sales-assistant", logs: logTraces, medianS: 4, sigma: 0.6, callGapS: 0.4,
		models: []int{mGemini, mGPT5Mini, mBGE}, modelWeight: []float64{0.6, 0.3, 0.1},
		streamShare: 0.3, userAgent: "langchain-openai/0.3.28 OpenAI/Python 1.99.9", project: "sales", harmless: 0.4, weight: 0.2},
	{name: "incident-triage", logs: logBoth, medianS: 4, sigma: 0.55, callGapS: 0.25,
		models: []int{mClaude, mLlama, mGPT5Mini}, modelWeight: []float64{0.5, 0.3, 0.2},
		streamShare: 0.1, userAgent: "OpenAI/Python 1.99.9", project: "sre", harmless: 0.8, weight: 0.2},
	{name: "code-review-agent", logs: logTraces, medianS: 12, sigma: 0.7, callGapS: 1.5,
		models: []int{mClaude, mGPT5}, modelWeight: []float64{0.7, 0.3},
		streamShare: 0, userAgent: "Anthropic/Python 0.64.0", project: "dev-productivity", harmless: 0.5, weight: 0.3},
	{name: "hr-helper", logs: logPayload, medianS: 4, sigma: 0.5, callGapS: 0.8,
		models: []int{mGPT5Mini, mBGE}, modelWeight: []float64{0.7, 0.3},
		streamShare: 0.6, userAgent: "databricks-sdk-py/0.62.0", project: "people", harmless: 0.2, weight: 0.2},
}

type agent struct {
	archetype
	idx            int
	endpoint       string // the agent's serving endpoint name
	sp             string // service principal application id
	servedEntityID string
	modelID        string // MLflow LoggedModel id, in trace metadata
	ownerEmail     string // the developer who deploys it; MLflow's mlflow.user
	ownerTeam      string
	modelIdxs      weighted
	offset         time.Duration // the agent clock's fixed offset from the gateway's
	hot            bool
	share          float64 // share of agent requests
	untagged       float64 // share of its calls carrying no id; set by plan
	harmlessJSON   string
}

type world struct {
	cfg         Config
	accountID   string
	workspaceID string
	teams       []team
	users       []user
	userWeights weighted
	agents      []*agent
	endpoints   []*gatewayEndpoint // indexed like models
}

var firstNames = []string{"ada", "alan", "amara", "ana", "aris", "bea", "ben", "carla", "chen", "dana", "david", "elena",
	"emil", "fatima", "felix", "grace", "hana", "hugo", "ines", "ivan", "jana", "jon", "kai", "kenji", "lara",
	"leo", "lina", "luca", "maya", "mei", "nia", "noah", "olga", "omar", "paula", "priya", "quinn", "rafael",
	"rosa", "sam", "sara", "tariq", "tess", "uma", "victor", "wen", "xavier", "yara", "yusuf", "zoe"}

var lastNames = []string{"abe", "adeyemi", "bauer", "becker", "costa", "dubois", "eriksen", "fischer", "garcia",
	"haddad", "hansen", "ito", "jensen", "kowalski", "kumar", "larsen", "lopez", "meyer", "moreau", "nakamura",
	"novak", "okafor", "olsen", "park", "petrov", "quispe", "rossi", "sato", "schmidt", "silva", "singh",
	"tanaka", "torres", "umar", "vargas", "weber", "wong", "yilmaz", "zhang", "ziegler"}

var teamNames = []string{"payments", "search", "growth", "platform", "data-science", "customer-success",
	"security", "finance", "marketing", "mobile", "infrastructure", "legal", "sales-ops", "people-ops", "research", "design"}

const (
	purposeWorld = iota + 1
	purposePlan
	purposeRequest
	purposeCalls
)

func newWorld(cfg Config) *world {
	r := streamRand(cfg.Seed, purposeWorld, 0)
	w := &world{cfg: cfg, accountID: newUUID(r).uuid()}
	w.workspaceID = workspaceID(r)

	for i := range cfg.Teams {
		name := teamNames[i%len(teamNames)]
		if i >= len(teamNames) {
			name += "-" + strconv.Itoa(i/len(teamNames)+1)
		}
		w.teams = append(w.teams, team{name: name, costCenter: fmt.Sprintf("CC-%d", 4100+i*7)})
	}
	// Team sizes are skewed: a few large teams, a long tail of small ones.
	teamPick := make([]float64, cfg.Teams)
	for i := range teamPick {
		teamPick[i] = 1 / math.Pow(float64(i+1), 0.8)
	}
	tp := newWeighted(teamPick)

	seen := make(map[string]int, cfg.Users)
	names := len(firstNames) * len(lastNames)
	order := r.Perm(names)
	for i := range cfg.Users {
		n := order[i%names]
		email := firstNames[n/len(lastNames)] + "." + lastNames[n%len(lastNames)]
		if k := seen[email]; k > 0 {
			email += strconv.Itoa(k + 2)
		}
		seen[email]++
		u := user{email: email + "@example.com", inOrg: true}
		if i < cfg.Teams {
			u.team = i // every team has someone
		} else {
			u.team = tp.pick(r)
		}
		w.users = append(w.users, u)
	}
	// Activity is Zipf-like over a random order of users: a few heavy users,
	// spread over teams.
	act := make([]float64, cfg.Users)
	rank := r.Perm(cfg.Users)
	for i := range act {
		act[i] = 1 / math.Pow(float64(rank[i]+3), 1.05)
	}
	w.userWeights = newWeighted(act)
	// A few users are missing from the org directory. Pick them among the
	// more active half so they actually show up in the workload.
	missing := max(1, cfg.Users/100)
	if cfg.Users < 4 {
		missing = 0
	}
	for i, got := 0, 0; i < cfg.Users && got < missing; i++ {
		if rank[i] < cfg.Users/2+1 && r.IntN(3) == 0 {
			w.users[i].inOrg = false
			got++
		}
	}

	for i, m := range models {
		ep := &gatewayEndpoint{idx: i, model: &models[i], id: newUUID(r).uuid(), destID: newUUID(r).uuid(),
			servedEntityID: newUUID(r).uuid()}
		switch m.name {
		case "gpt-5":
			// Reached through an external-model destination with the
			// organisation's own OpenAI key.
			ep.name, ep.destType, ep.destName = "openai-gpt-5", "EXTERNAL_MODEL", "openai-gpt-5"
		default:
			ep.name, ep.destType, ep.destName = "databricks-"+m.name, "PAY_PER_TOKEN", "system.ai.databricks-"+m.name
		}
		ep.tags = [][2]string{{"cost_center", "CC-ML-PLATFORM"}, {"env", "prod"}, {"owner", "ml-platform"}}
		if i%2 == 1 {
			ep.tags = ep.tags[:2]
		}
		ep.tagsJSON = appendStringMap(nil, ep.tags)
		w.endpoints = append(w.endpoints, ep)
	}

	w.agents = newAgents(cfg, r, w)
	return w
}

func workspaceID(r *rand.Rand) string {
	return strconv.FormatInt(1_000_000_000_000_000+r.Int64N(8_999_999_999_999_999), 10)
}

func newAgents(cfg Config, r *rand.Rand, w *world) []*agent {
	agents := make([]*agent, cfg.Agents)
	hot := cfg.HotServicePrincipals
	// Hot agents share 35% of requests (more when there are several); the
	// rest follow their archetype weights.
	hotShare := 0.0
	switch {
	case hot == cfg.Agents:
		hotShare = 1
	case hot > 0:
		hotShare = math.Min(0.7, 0.35+0.1*float64(hot-1))
	}
	var coldTotal float64
	for i := range cfg.Agents {
		a := archetypes[i%len(archetypes)]
		if i >= hot {
			coldTotal += a.weight
		}
	}
	for i := range cfg.Agents {
		at := archetypes[i%len(archetypes)]
		ag := &agent{archetype: at, idx: i, hot: i < hot}
		ag.endpoint = at.name
		if i >= len(archetypes) {
			ag.endpoint += "-" + strconv.Itoa(i/len(archetypes)+1)
		}
		if ag.hot {
			ag.share = hotShare / float64(hot)
			// Hot agents run longer, busier requests: that is what piles up
			// overlapping requests of one service principal.
			ag.medianS = math.Max(ag.medianS, 18)
			ag.callGapS = math.Max(ag.callGapS, 2.6)
		} else {
			ag.share = (1 - hotShare) * at.weight / coldTotal
		}
		ag.sp = newUUID(r).uuid()
		ag.servedEntityID = newUUID(r).uuid()
		ag.modelID = "m-" + newHex(r).hex()
		owner := w.users[r.IntN(len(w.users))]
		ag.ownerEmail = owner.email
		ag.ownerTeam = w.teams[owner.team].name
		ag.modelIdxs = newWeighted(at.modelWeight)
		ag.offset = time.Duration(uniform(r, -0.8, 0.8) * float64(cfg.MaxSkew))
		ag.harmlessJSON = string(appendStringMap(nil, [][2]string{{"project", at.project}, {"team", ag.ownerTeam}}))
		agents[i] = ag
	}
	return agents
}

func (w *world) agentShares() []float64 {
	s := make([]float64, len(w.agents))
	for i, a := range w.agents {
		s[i] = a.share
	}
	return s
}

// orgRows are the org.csv lines, users missing from the directory left out,
// sorted by email so the file reads like an export.
func (w *world) orgRows() [][3]string {
	var rows [][3]string
	for _, u := range w.users {
		if u.inOrg {
			t := w.teams[u.team]
			rows = append(rows, [3]string{u.email, t.name, t.costCenter})
		}
	}
	slices.SortFunc(rows, func(a, b [3]string) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})
	return rows
}

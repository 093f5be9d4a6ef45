package dag

import (
	"cmp"
	"slices"
)

// groupKeys are the keys a group of the `groups` mapping may set.
var groupKeys = []string{"description", "defaults", "tasks", "map", "max_map_length"}

// rawGroup is a group as its file gives it, before its tasks are checked.
type rawGroup struct {
	group    *Group
	node     *node // its name
	defaults map[string]pair
	// mapping holds its `map` and max_map_length, when set.
	mapping, maxMapLength *pair
	// entries are its `tasks` entries, less those listing a task twice
	// or a task an earlier group lists.
	entries []*node
}

// groups decodes the `groups` mapping. memberOf gives the group of each
// task id a group lists.
func (d *decoder) groups(f map[string]pair) (groups []*rawGroup, memberOf map[string]*rawGroup) {
	p, ok := f["groups"]
	if !ok || !d.mapping(p.val, "groups") {
		return nil, nil
	}
	memberOf = map[string]*rawGroup{}
	for _, kv := range p.val.pairs {
		name, isStr := kv.key.val.(string)
		if !taskIDRule.ok(name) {
			d.errAt(kv.key, "invalid group name %q: use %s", kv.key.text, taskIDRule.what)
			if !isStr {
				continue
			}
		}
		what := "group " + name
		if !d.mapping(kv.val, what) {
			continue
		}
		gf := d.fields(kv.val, groupKeys, what)
		rg := &rawGroup{group: &Group{Name: name}, node: kv.key}
		if dp, ok := gf["description"]; ok {
			rg.group.Description, _ = d.str(dp)
		}
		if dp, ok := gf["defaults"]; ok {
			rg.defaults = d.defaults(dp, "defaults of "+what)
		}
		if mp, ok := gf["map"]; ok {
			rg.mapping = &mp
		}
		if mp, ok := gf["max_map_length"]; ok {
			rg.maxMapLength = &mp
		}
		tp, ok := gf["tasks"]
		switch {
		case !ok:
			d.errAt(kv.key, "group %s has no tasks: list their ids under tasks", name)
		case tp.val.kind != seqNode:
			d.errAt(tp.val, "group %s: tasks must be a list of task ids, got %s", name, tp.val.describe())
		case len(tp.val.items) == 0:
			d.errAt(tp.val, "group %s has no tasks: list their ids under tasks", name)
		default:
			for _, it := range tp.val.items {
				id, ok := it.str()
				if !ok {
					d.errAt(it, "group %s: tasks entries must be task ids, got %s", name, it.describe())
					continue
				}
				switch other := memberOf[id]; {
				case other == rg:
					d.errAt(it, "group %s: task %q is listed twice", name, id)
				case other != nil:
					d.errAt(it, "task %q is in groups %s and %s: a task may be in one group only", id, other.group.Name, name)
				default:
					memberOf[id] = rg
					rg.entries = append(rg.entries, it)
				}
			}
		}
		groups = append(groups, rg)
	}
	return groups, memberOf
}

// groupTasks checks the task ids the groups list, and fills g.Groups and
// the Group of their tasks.
func (d *decoder) groupTasks(g *DAG, groups []*rawGroup) {
	if len(groups) == 0 {
		return
	}
	ids := make([]string, len(g.Tasks))
	for i, t := range g.Tasks {
		ids[i] = t.ID
	}
	for _, rg := range groups {
		gp := rg.group
		if g.byID[gp.Name] != nil {
			d.errAt(rg.node, "group %s has the id of a task: group names and task ids must differ", gp.Name)
		}
		for _, it := range rg.entries {
			id, _ := it.str()
			t := g.byID[id]
			if t == nil {
				d.errAt(it, "group %s: no task %q in this DAG%s", gp.Name, id, d.suggest(id, ids))
				continue
			}
			t.Group = gp.Name
			gp.Tasks = append(gp.Tasks, id)
		}
		slices.SortFunc(gp.Tasks, func(a, b string) int { return cmp.Compare(g.order[a], g.order[b]) })
		g.Groups = append(g.Groups, gp)
	}
}

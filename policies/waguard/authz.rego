# waguard default authorization policy.
#
# The gateway evaluates data.waguard.authz.decision once per request and
# expects {"allow": bool, "reasons": [string]}. Deny reasons are shown to the
# denied caller (in the AccessDeniedException message), so each one says what
# was denied and why.
#
# What the policy enforces:
#   * A caller whose team has no entry in data.waguard.teams is denied,
#     whatever the operation: unknown teams are not onboarded.
#   * Read operations (input.access == "read": Get*/List*/Export*) are allowed.
#   * Share-creating operations (CreateTemplateShare, CreateWorkloadShare,
#     CreateLensShare, CreateProfileShare) are allowed only when
#     input.share.shared_with is on the team's approved list for its
#     input.share.target_type (account, organization, ou). Any other target
#     type (e.g. "unknown", or an IAM user/role ARN) is always denied, because
#     it cannot be approved.
#   * Workload shares also carry a PermissionType. READONLY may always be
#     granted; CONTRIBUTOR only by a team with "allow_contributor": true. This
#     is checked on UpdateWorkloadShare (which changes the permission of an
#     existing share) and also on CreateWorkloadShare, since otherwise a team
#     could create a CONTRIBUTOR share directly and skip the Update check.
#   * Share removal (Delete{Template,Workload,Lens,Profile}Share) only narrows
#     access, so it is allowed for any known team.
#   * Every other operation is denied.
#
# Team data (policies/waguard/teams.json, loaded as data.waguard.teams):
#   {
#     "<team>": {
#       "accounts":      ["111122223333", ...],   # 12-digit account IDs, as strings
#       "organizations": ["o-exampleorg01", ...],
#       "ous":           ["ou-ab12-11111111", ...],
#       "allow_contributor": false,              # optional, default false
#       "resource_overrides": {                  # optional
#         "<resource type>": {"ous": [...]}      # replaces that one list for that
#       },                                       # resource type only
#       "description": "..."                     # optional, ignored by the policy
#     }
#   }
# The three lists apply to every resource type (review-template, workload,
# lens, profile). A resource_overrides entry replaces (not extends) the named
# list for shares of that resource type; lists it does not name still come
# from the team's top-level lists. A missing list means "nothing approved".
#
# Shape of the decision: deny overrides allow. Each check that applies to a
# request gives a verdict, [allowed, reason]. A request is allowed only when at
# least one check allowed it and none denied it; the reasons are sorted; a
# request no check recognised is denied (fail closed).
#
# How this file is organised, and why
# -----------------------------------
# The gateway evaluates `decision` for every request with the regorus
# interpreter, whose cost is per rule, function call, builtin call, `data`
# reference and object literal evaluated (each allocates and builds path
# strings), not per line of policy: evaluating the former set of ~25 small
# rules cost 100-300 us per request. So:
#
#   * `decision` is a single chain of `else` branches, tried in order until
#     one matches. Common requests come first, and each branch starts with a
#     cheap test on `input` so that it fails fast for requests it does not
#     handle.
#   * The first branches (marked "Fast path") decide the common well-formed
#     requests in one rule body each: tables written inline (a reference to
#     another rule costs more than building a small literal), one lookup of
#     the team data and one sprintf.
#   * The branches marked "General path", with the rules and functions below
#     `decision`, are the full specification. They handle every input
#     (missing or non-string fields, unknown teams, resource_overrides, ...)
#     and are evaluated only when no fast path matched.
#
# A fast path must give exactly the decision the general path would give for
# the inputs it accepts, and must simply not match (never fail) for any other.
# When changing a check or a message, change both (authz_test.rego exercises
# both).
#
# Idioms in the fast paths:
#   * `x >= ""` with `x < []` holds exactly when x is a string, `x > ""` with
#     `x < []` when it is a non-empty string, and `x >= {}` when it is an
#     object (Rego orders null < booleans < numbers < strings < arrays < ...
#     < objects; JSON input and data hold no sets). Each is several times
#     cheaper than is_string(x) or is_object(x).
#   * Every value formatted with %q is a string at that point (the general
#     path normalises missing and non-string values to ""), so sprintf cannot
#     fail.
package waguard.authz

import rego.v1

# The fast paths inline copies of the operation tables further down and of
# the target type -> team list mapping in target_verdict_for.
decision := {"allow": true, "reasons": [sprintf("%s is a read-only operation", [op])]} if {
	# Fast path: a read by a known team of an operation that is not governed.
	# (Share removal labelled a read gets a second reason: general path.)
	input.access == "read"
	op := input.operation
	op >= ""
	op < []
	not op in [
		"CreateTemplateShare", "CreateWorkloadShare", "CreateLensShare", "CreateProfileShare",
		"UpdateWorkloadShare",
		"DeleteTemplateShare", "DeleteWorkloadShare", "DeleteLensShare", "DeleteProfileShare",
	]
	t := input.caller.team
	t != ""
	teams := data.waguard.teams
	teams[t] >= {}
} else := {"allow": true, "reasons": [sprintf("%s %q is approved for team %q", [tt, sw, t])]} if {
	# Fast path: share creation other than CreateWorkloadShare by a known
	# team with no resource_overrides for the resource type, with the target
	# on the team's list for its type. The membership test comes early so
	# that a denied request leaves this branch quickly.
	tt := input.share.target_type
	ops := {"CreateTemplateShare": "review-template", "CreateLensShare": "lens", "CreateProfileShare": "profile"}
	rt := ops[input.operation]
	lists := {"account": "accounts", "organization": "organizations", "ou": "ous"}
	sw := input.share.shared_with
	t := input.caller.team
	teams := data.waguard.teams
	team := teams[t]
	sw in team[lists[tt]] # defined only for an object team and a known target type
	sw > ""
	sw < []
	t != ""
	not team.resource_overrides[rt]
} else := {"allow": false, "reasons": [sprintf("team %q may not share %s with %s %q: not in the team's approved %s", [t, rt, tt, sw, label])]} if {
	# Fast path: as above, with the target not on the list.
	tt := input.share.target_type
	ops := {"CreateTemplateShare": "review-template", "CreateLensShare": "lens", "CreateProfileShare": "profile"}
	rt := ops[input.operation]
	sw := input.share.shared_with
	sw > ""
	sw < []
	t := input.caller.team
	t != ""
	teams := data.waguard.teams
	team := teams[t]
	team >= {}
	not team.resource_overrides[rt]
	lists := {"account": ["accounts", "accounts"], "organization": ["organizations", "organizations"], "ou": ["ous", "OUs"]}
	[tl, label] := lists[tt]
	not sw in team[tl]
} else := {"allow": true, "reasons": [sprintf("team %q may grant %s on workload shares", [t, pt])]} if {
	# Fast path: UpdateWorkloadShare by a known team of a permission
	# (input.share.permission_type) that the team may grant.
	input.operation == "UpdateWorkloadShare"
	pt := input.share.permission_type
	t := input.caller.team
	t != ""
	teams := data.waguard.teams
	team := teams[t]
	team >= {}
	grantable := {"READONLY": true, "CONTRIBUTOR": object.get(team, "allow_contributor", false) == true}
	grantable[pt]
} else := {"allow": true, "reasons": [sprintf("%s %q is approved for team %q", [tt, sw, t]), sprintf("team %q may grant %s on workload shares", [t, pt])]} if {
	# Fast path: CreateWorkloadShare by a known team where both checks
	# allow, as in the fast paths above. The target reason starts with the
	# target type, so it sorts before the permission reason ("team ...").
	input.operation == "CreateWorkloadShare"
	tt := input.share.target_type
	lists := {"account": "accounts", "organization": "organizations", "ou": "ous"}
	sw := input.share.shared_with
	sw > ""
	sw < []
	t := input.caller.team
	t != ""
	teams := data.waguard.teams
	team := teams[t]
	sw in team[lists[tt]]
	not team.resource_overrides.workload
	pt := input.share.permission_type
	grantable := {"READONLY": true, "CONTRIBUTOR": object.get(team, "allow_contributor", false) == true}
	grantable[pt]
} else := {"allow": true, "reasons": [sprintf("%s only removes a share, which narrows access", [op])]} if {
	# Fast path: share removal by a known team, not labelled a read.
	op := input.operation
	op in ["DeleteTemplateShare", "DeleteWorkloadShare", "DeleteLensShare", "DeleteProfileShare"]
	not input.access == "read"
	t := input.caller.team
	t != ""
	teams := data.waguard.teams
	teams[t] >= {}
} else := {"allow": false, "reasons": [sprintf("operation %q is not permitted through waguard: waguard allows only read operations and governed share changes", [op])]} if {
	# Fast path: a write by a known team to an operation that is not
	# governed. A missing or unexpected input.access counts as a write.
	op := input.operation
	op >= ""
	op < []
	not op in [
		"CreateTemplateShare", "CreateWorkloadShare", "CreateLensShare", "CreateProfileShare",
		"UpdateWorkloadShare",
		"DeleteTemplateShare", "DeleteWorkloadShare", "DeleteLensShare", "DeleteProfileShare",
	]
	not input.access == "read"
	t := input.caller.team
	t != ""
	teams := data.waguard.teams
	teams[t] >= {}
} else := {"allow": allowed, "reasons": [reason]} if {
	# General path, with string values at hand: share creation other than
	# CreateWorkloadShare by a known team (resource_overrides, unknown target
	# types, an empty SharedWith).
	tt := input.share.target_type
	ops := {"CreateTemplateShare": "review-template", "CreateLensShare": "lens", "CreateProfileShare": "profile"}
	rt := ops[input.operation]
	tt >= ""
	tt < []
	sw := input.share.shared_with
	sw >= ""
	sw < []
	t := input.caller.team
	t != ""
	teams := data.waguard.teams
	team := teams[t]
	team >= {}
	[allowed, reason] := target_verdict_for(team, t, rt, tt, sw)
} else := {"allow": allowed, "reasons": [reason]} if {
	# General path, with string values at hand: UpdateWorkloadShare by a
	# known team.
	op := input.operation
	op == "UpdateWorkloadShare"
	pt := input.share.permission_type
	pt >= ""
	pt < []
	t := input.caller.team
	t != ""
	teams := data.waguard.teams
	team := teams[t]
	team >= {}
	[allowed, reason] := permission_verdict_for(team, t, op, pt)
} else := d if {
	# General path, with string values at hand: CreateWorkloadShare by a
	# known team.
	op := input.operation
	op == "CreateWorkloadShare"
	tt := input.share.target_type
	tt >= ""
	tt < []
	sw := input.share.shared_with
	sw >= ""
	sw < []
	pt := input.share.permission_type
	pt >= ""
	pt < []
	t := input.caller.team
	t != ""
	teams := data.waguard.teams
	team := teams[t]
	team >= {}
	d := decide([target_verdict_for(team, t, "workload", tt, sw), permission_verdict_for(team, t, op, pt)])
} else := {"allow": false, "reasons": [sprintf("team %q (caller %q) has no entry in waguard's team data, so it may not call %s", [t, p, op])]} if {
	# General path, with string values at hand: a team with no entry (see
	# below).
	t := input.caller.team
	t > ""
	t < []
	teams := data.waguard.teams
	not teams[t] >= {}
	p := input.caller.principal
	p >= ""
	p < []
	op := input.operation
	op >= ""
	op < []
} else := {"allow": false, "reasons": [msg]} if {
	# General path, from here on with normalised values.
	team_name == ""
	msg := sprintf("caller %q is not mapped to any team, so waguard cannot authorize operation %q", [principal, operation])
} else := {"allow": false, "reasons": [msg]} if {
	# A team with no entry in the team data is denied whatever the
	# operation, with this one reason rather than per-operation noise.
	not team
	msg := sprintf("team %q (caller %q) has no entry in waguard's team data, so it may not call %s", [team_name, principal, operation])
} else := d if {
	d := decide(verdicts)
} else := {"allow": false, "reasons": [no_rule_matched_reason]}

no_rule_matched_reason := "request denied by default: no waguard rule allows it"

# Deny overrides allow; undefined for an empty list of verdicts.
decide(vs) := {"allow": false, "reasons": sort(denied)} if {
	denied := [reason | some [allowed, reason] in vs; not allowed]
	count(denied) > 0
} else := {"allow": true, "reasons": sort(allowed)} if {
	allowed := [reason | some [true, reason] in vs]
	count(allowed) > 0
}

# ---------------------------------------------------------------------------
# The general path. Nothing below is evaluated for a fast-path request.
# ---------------------------------------------------------------------------

# The checks that apply to a known team's request.
#
# Share-creating and share-updating operations are always write operations in
# the service model; they are checked whatever input.access says, so a
# mislabelled access can never skip their checks. A missing or unexpected
# input.access counts as a write.
verdicts := [target_verdict] if {
	share_resource_type
	not operation in workload_permission_operations
} else := [target_verdict, permission_verdict] if {
	share_resource_type
} else := [permission_verdict] if {
	operation in workload_permission_operations
} else := [[true, read_reason], [true, removal_reason]] if {
	operation in share_delete_operations
	read_access
} else := [[true, removal_reason]] if {
	operation in share_delete_operations
} else := [[true, read_reason]] if {
	read_access
} else := [[false, sprintf("operation %q is not permitted through waguard: waguard allows only read operations and governed share changes", [operation])]]

read_reason := sprintf("%s is a read-only operation", [operation])

# Share removal only narrows who can see a resource.
removal_reason := sprintf("%s only removes a share, which narrows access", [operation])

target_verdict := target_verdict_for(team, team_name, share_resource_type, target_type, shared_with)

permission_verdict := permission_verdict_for(team, team_name, operation, permission_type)

# ---------------------------------------------------------------------------
# Operation tables
# ---------------------------------------------------------------------------

# Share-creating operations, each with the resource type it shares. The
# resource type comes from the operation name rather than from
# input.resource.type, so it is always set and always one of the four.
share_create_operations := {
	"CreateTemplateShare": "review-template",
	"CreateWorkloadShare": "workload",
	"CreateLensShare": "lens",
	"CreateProfileShare": "profile",
}

# Operations that grant a workload-share PermissionType.
workload_permission_operations := {"CreateWorkloadShare", "UpdateWorkloadShare"}

# Share removal only narrows who can see a resource.
share_delete_operations := {
	"DeleteTemplateShare",
	"DeleteWorkloadShare",
	"DeleteLensShare",
	"DeleteProfileShare",
}

# ---------------------------------------------------------------------------
# Normalised input. Every value below is a string (possibly empty), so the
# messages built from them never fail to render.
# ---------------------------------------------------------------------------

operation := op if {
	op := input.operation
	is_string(op)
} else := ""

principal := p if {
	p := input.caller.principal
	is_string(p)
} else := ""

team_name := t if {
	t := input.caller.team
	is_string(t)
} else := ""

read_access if input.access == "read"

# The caller's team entry; undefined when the team has no entry.
team := data.waguard.teams[team_name] if {
	team_name != ""
	is_object(data.waguard.teams[team_name])
}

share_resource_type := share_create_operations[operation]

target_type := tt if {
	tt := input.share.target_type
	is_string(tt)
} else := ""

shared_with := sw if {
	sw := input.share.shared_with
	is_string(sw)
} else := ""

# The gateway sends it as input.share.permission_type; the request body is
# the fallback, since that is what AWS acts on.
permission_type := pt if {
	pt := input.share.permission_type
	is_string(pt)
} else := pt if {
	pt := input.request.body.PermissionType
	is_string(pt)
} else := ""

# ---------------------------------------------------------------------------
# Share creation: the target must be on the team's approved list
# ---------------------------------------------------------------------------

# The verdict on a known team t sharing a resource of type rt with target sw
# of type tt. The target type (input.share.target_type) names the team data
# list that approves the target: account -> accounts, organization ->
# organizations, ou -> ous (called "OUs" in messages). Any other target type
# (e.g. "unknown", or an IAM user/role ARN) cannot be approved.
target_verdict_for(team, t, rt, tt, sw) := [false, msg] if {
	not tt in ["account", "organization", "ou"]
	msg := sprintf(
		"team %q may not share %s with %q: target type %q cannot be approved (only account IDs, organization IDs and OU IDs can)",
		[t, rt, sw, tt],
	)
} else := [false, msg] if {
	sw == ""
	msg := sprintf("team %q may not share %s: the request names no SharedWith target", [t, rt])
} else := [true, msg] if {
	lists := {"account": "accounts", "organization": "organizations", "ou": "ous"}
	[list, scope] := approved_targets_for(team, rt, lists[tt])
	sw in list
	msg := sprintf("%s %q is approved for team %q%s", [tt, sw, t, scope])
} else := [false, msg] if {
	lists := {"account": ["accounts", "accounts"], "organization": ["organizations", "organizations"], "ou": ["ous", "OUs"]}
	[tl, label] := lists[tt]
	[_, scope] := approved_targets_for(team, rt, tl)
	msg := sprintf("team %q may not share %s with %s %q: not in the team's approved %s%s", [t, rt, tt, sw, label, scope])
}

# [the approved targets, a scope for messages]. A per-resource-type override
# replaces the team's top-level list tl; the scope (" for lens shares") then
# tells the caller which list decided.
approved_targets_for(team, rt, tl) := [list, sprintf(" for %s shares", [rt])] if {
	list := team.resource_overrides[rt][tl]
	list # an override of false still replaces the list, but names no scope
} else := [list, ""] if {
	list := team.resource_overrides[rt][tl]
} else := [object.get(team, tl, []), ""]

# ---------------------------------------------------------------------------
# Workload share permissions: READONLY always, CONTRIBUTOR only if allowed
# ---------------------------------------------------------------------------

# The verdict on a known team t granting PermissionType pt through operation
# op. Only a literal true allow_contributor counts; a string "true" or a
# missing key does not.
permission_verdict_for(team, t, op, pt) := [false, msg] if {
	pt == ""
	msg := sprintf("team %q may not call %s without a PermissionType: waguard cannot tell what it would grant", [t, op])
} else := [false, msg] if {
	not pt in ["READONLY", "CONTRIBUTOR"]
	msg := sprintf("team %q may not grant PermissionType %q on a workload share: it is neither READONLY nor CONTRIBUTOR", [t, pt])
} else := [false, msg] if {
	pt == "CONTRIBUTOR"
	not team.allow_contributor == true
	msg := sprintf(
		"team %q may not grant %s on a workload share (%s): the team's data does not set allow_contributor to true",
		[t, pt, op],
	)
} else := [true, sprintf("team %q may grant %s on workload shares", [t, pt])]

# waguard's shipped authorization policy: which team may share which
# Well-Architected resource, and with whom.
#
# The gateway evaluates data.waguard.authz.decision for every request and
# expects {"allow": bool, "reasons": [string]}. A denied caller reads the
# reasons in its AccessDeniedException, so every reason says what was denied
# and why.
#
# The policy, in the order `decision` (at the end of this file) applies it:
#
#   1. A caller that is not mapped to a team, or whose team has no entry in
#      the team data, is denied whatever it asks: unknown teams are not
#      onboarded.
#   2. Removing a share (Delete*Share) only narrows who can see a resource:
#      allowed.
#   3. Reading (Get*, List*, Export*) is allowed.
#   4. Sharing a resource (CreateTemplateShare, CreateWorkloadShare,
#      CreateLensShare, CreateProfileShare) is allowed only with a target the
#      team may share with (target_verdict), however the request is labelled.
#   5. Workload shares also grant a permission: READONLY always, CONTRIBUTOR
#      only for a team whose data sets "allow_contributor": true
#      (permission_verdict). UpdateWorkloadShare changes it; CreateWorkloadShare
#      sets it, so it is checked there too, or a team could create a
#      CONTRIBUTOR share directly.
#   6. Everything else is denied.
#
# Deny overrides allow: a workload share is allowed only when both its target
# and its permission are. Anything the rules above do not allow is denied.
#
# Whom a team may share with (its entry in policies/waguard/teams.json):
#
#   accounts       exactly these AWS accounts, inside or outside the
#                  organization
#   organizations  the whole organization: the organization itself, and every
#                  account and OU the gateway found in it
#   ous            these OUs and everything below them: child OUs and the
#                  accounts in any of them
#   principals     exactly these IAM users and roles
#
# A resource_overrides entry replaces one list for one resource type. A
# suspended account is never approved, even when listed. Targets of any other
# type cannot be approved.
#
# Where a target sits comes from the gateway (input.share.target):
# in_organization, and ou_path, its OUs from the root down (an OU's own path
# ends with itself). Without [organizations] in the gateway's configuration
# there is no input.organization and no target is placed, so only the lists
# decide. When the gateway knows the organization but could not place the
# target, a share that only its place could approve is denied (fail closed);
# the lists still approve on their own.
#
# The team data is read through data.waguard.index (index.rego): the same
# lists as sets, per share-creating operation and target type, with the
# overrides applied.
package waguard.authz

import rego.v1

# ---------------------------------------------------------------------------
# Who is asking
# ---------------------------------------------------------------------------

# The caller's team; undefined when the caller is not mapped to a team or the
# team has no entry in the team data.
team := data.waguard.index.teams[input.caller.team]

caller_refusal := sprintf("caller %q is not mapped to any team, so waguard cannot authorize operation %q", [principal, operation]) if {
	team_name == ""
} else := sprintf("team %q (caller %q) has no entry in waguard's team data, so it may not call %s", [team_name, principal, operation])

# ---------------------------------------------------------------------------
# Share creation: whom the team may share with
# ---------------------------------------------------------------------------

# [allowed, reason] for the share's target, given what the team may share
# through the operation (data.waguard.index.teams[_].shares[_]: the resource
# type, and the approved targets by target type).
# The first branch that holds decides: the targets that can never be
# approved, then the ways a target is approved, then why it was not.
target_verdict(approved) := [false, msg] if {
	# No list approves targets of this type.
	not approved.targets[input.share.target_type]
	msg := sprintf("team %q may not share %s with %q: target type %q cannot be approved (only account IDs, organization IDs and OU IDs can)", [input.caller.team, approved.resource_type, shared_with, target_type])
} else := [false, msg] if {
	# AWS keeps a suspended account until it closes; nothing is shared with
	# it, or with its users and roles.
	input.share.target.status == "SUSPENDED"
	msg := sprintf("team %q may not share %s with %s %s: account %s is suspended, and a suspended account is never approved", [input.caller.team, approved.resource_type, input.share.target_type, input.share.target.id, input.share.target.account])
} else := [true, msg] if {
	# On the team's list for its type, inside or outside the organization.
	listed := approved.targets[input.share.target_type]
	input.share.target.id in listed.ids
	msg := sprintf("%s %q is approved for team %q%s", [input.share.target_type, input.share.target.id, input.caller.team, listed.scope])
} else := [true, msg] if {
	# In an approved OU, or below one.
	organization_placement == "in"
	count([ou | some ou in input.share.target.ou_path; ou in approved.targets.ou.ids]) > 0
	msg := sprintf("%s %s (%s) is under %s, which is under an OU approved for team %q%s", [input.share.target_type, input.share.target.id, input.share.target.name, concat("/", input.share.target.ou_path_names), input.caller.team, approved.targets.ou.scope])
} else := [true, msg] if {
	# In the organization, which the team may share with as a whole.
	organization_placement == "in"
	input.organization.id in approved.targets.organization.ids
	msg := sprintf("%s %s (%s) is in organization %s, which is approved for team %q%s", [input.share.target_type, input.share.target.id, input.share.target.name, input.organization.id, input.caller.team, approved.targets.organization.scope])
} else := [false, msg] if {
	organization_placement == "in"
	msg := sprintf("team %q may not share %s: %s %s (%s) is under %s, which is not under an OU approved for team %q%s", [input.caller.team, approved.resource_type, input.share.target_type, input.share.target.id, input.share.target.name, concat("/", input.share.target.ou_path_names), input.caller.team, approved.targets.ou.scope])
} else := [false, msg] if {
	organization_placement == "outside"
	listed := approved.targets[input.share.target_type]
	msg := sprintf("team %q may not share %s with %s %s: it is outside the organization and not in the team's approved %s%s", [input.caller.team, approved.resource_type, input.share.target_type, input.share.target.id, listed.label, listed.scope])
} else := [false, msg] if {
	# Fail closed: only its place in the organization could approve it, and
	# that is not known.
	organization_placement == "unknown"
	count(approved.targets.ou.ids) + count(approved.targets.organization.ids) > 0
	msg := sprintf("team %q may not share %s with %s %s: the organization lookup for it failed, so waguard cannot tell whether it is in an OU or organization approved for the team", [input.caller.team, approved.resource_type, input.share.target_type, input.share.target.id])
} else := [false, msg] if {
	target_id == ""
	msg := sprintf("team %q may not share %s: the request names no SharedWith target", [input.caller.team, approved.resource_type])
} else := [false, msg] if {
	# Only the gateway's description of the target (input.share.target) can
	# approve it; every share it sends has one.
	not is_object(input.share.target)
	msg := sprintf("team %q may not share %s with %q: the input does not describe the target (input.share.target)", [input.caller.team, approved.resource_type, target_id])
} else := [false, msg] if {
	# Not on the team's list for its type (the reason without organizations).
	listed := approved.targets[input.share.target_type]
	msg := sprintf("team %q may not share %s with %s %q: not in the team's approved %s%s", [input.caller.team, approved.resource_type, input.share.target_type, target_id, listed.label, listed.scope])
}

# Where the gateway found the target: "in" the organization, "outside" it, or
# "unknown" when it knows the organization but could not place the target
# (the lookup failed, or no snapshot of the organization could be read yet).
# Undefined without [organizations], and for targets without a place: only
# accounts and OUs have one, an IAM principal is approved only by name,
# whichever account it belongs to.
organization_placement := "in" if {
	input.share.target_type in {"account", "ou"}
	input.share.target.in_organization == true
} else := "outside" if {
	input.share.target_type in {"account", "ou"}
	input.share.target.in_organization == false
} else := "unknown" if {
	input.share.target_type in {"account", "ou"}
	is_object(input.organization)
}

# ---------------------------------------------------------------------------
# Workload shares: READONLY always, CONTRIBUTOR only with allow_contributor
# ---------------------------------------------------------------------------

# [allowed, reason] for the permission a workload share grants, for a team
# that may or may not grant CONTRIBUTOR (only a literal true in the team data
# allows it; index.rego).
permission_verdict(contributor_allowed) := [false, msg] if {
	permission_type == ""
	msg := sprintf("team %q may not call %s without a PermissionType: waguard cannot tell what it would grant", [input.caller.team, input.operation])
} else := [false, msg] if {
	not permission_type in {"READONLY", "CONTRIBUTOR"}
	msg := sprintf("team %q may not grant PermissionType %q on a workload share: it is neither READONLY nor CONTRIBUTOR", [input.caller.team, permission_type])
} else := [false, msg] if {
	permission_type == "CONTRIBUTOR"
	not contributor_allowed
	msg := sprintf("team %q may not grant %s on a workload share (%s): the team's data does not set allow_contributor to true", [input.caller.team, permission_type, input.operation])
} else := [true, msg] if {
	msg := sprintf("team %q may grant %s on workload shares", [input.caller.team, permission_type])
}

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
# Input values that reasons name: strings, "" when missing or not a string
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

target_type := tt if {
	tt := input.share.target_type
	is_string(tt)
} else := ""

shared_with := sw if {
	sw := input.share.shared_with
	is_string(sw)
} else := ""

# The target as the gateway resolved it; SharedWith when the input has no
# resolution.
target_id := id if {
	id := input.share.target.id
	is_string(id)
	id != ""
} else := shared_with

# ---------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------

decision := {"allow": false, "reasons": [caller_refusal]} if {
	not team
} else := {"allow": true, "reasons": removal_reasons} if {
	# Share removal only narrows who can see a resource.
	input.operation in {"DeleteTemplateShare", "DeleteWorkloadShare", "DeleteLensShare", "DeleteProfileShare"}
} else := {"allow": true, "reasons": [read_reason]} if {
	# Share creation and permission changes are checked below, whatever
	# their access label says.
	input.access == "read"
	not team.shares[input.operation]
	not input.operation == "UpdateWorkloadShare"
} else := {"allow": allowed, "reasons": [reason]} if {
	# Sharing: the target decides.
	approved := team.shares[input.operation]
	input.operation != "CreateWorkloadShare"
	[allowed, reason] := target_verdict(approved)
} else := deny_overrides_allow([target_verdict(approved), permission_verdict(team.allow_contributor)]) if {
	# Sharing a workload: the target and the permission decide.
	approved := team.shares[input.operation]
	input.operation == "CreateWorkloadShare"
} else := {"allow": allowed, "reasons": [reason]} if {
	input.operation == "UpdateWorkloadShare"
	[allowed, reason] := permission_verdict(team.allow_contributor)
} else := {"allow": false, "reasons": [sprintf("operation %q is not permitted through waguard: waguard allows only read operations and governed share changes", [operation])]}

read_reason := sprintf("%s is a read-only operation", [operation])

# A share removal labelled a read is both.
removal_reasons := sort([read_reason, removal_reason]) if {
	input.access == "read"
} else := [removal_reason]

removal_reason := sprintf("%s only removes a share, which narrows access", [operation])

# Allowed when every verdict allows, with all their reasons; otherwise denied
# with the reasons of the verdicts that deny. Reasons are sorted.
deny_overrides_allow(verdicts) := {"allow": false, "reasons": sort(denied)} if {
	denied := [reason | some [false, reason] in verdicts]
	count(denied) > 0
} else := {"allow": true, "reasons": sort([reason | some [_, reason] in verdicts])}

using System.Text.Json;
using Fer.Flow.Cache;

namespace Fer.Flow.Pipeline;

/// <summary>A stage of a flow with everything resolved: settings, members, inputs and its fingerprint.</summary>
public sealed record PlannedStage(
    IStage Stage,
    StageSettings Settings,
    IReadOnlyList<(MemberSpec Spec, StageSettings Settings)> Members,
    IReadOnlyList<ManifestInput> Inputs,
    SortedDictionary<string, string> UpstreamFingerprints,
    string Fingerprint)
{
    public string Name => Stage.Name;
}

/// <summary>
/// Resolves a flow against the stage catalog and computes every fingerprint before anything runs. A stage's
/// fingerprint hashes its name and code version, its settings, its members, its upstream stages'
/// fingerprints and the content of its input files, so a change invalidates exactly that stage and what follows.
/// </summary>
public static class FlowPlanner
{
    public static IReadOnlyList<PlannedStage> Plan(FlowDefinition flow, StageCatalog catalog,
        IReadOnlyDictionary<string, string> stageOverrides, InputFileHasher hasher)
    {
        var specs = flow.Stages;
        foreach (var key in stageOverrides.Keys)
        {
            var stageName = key[..key.IndexOf('.')];
            if (!specs.Any(s => s.Name == stageName))
                throw new FlowDefinitionException(
                    $"--set {key}: flow {flow.Name} has no stage '{stageName}'; its stages: {string.Join(", ", specs.Select(s => s.Name))}");
        }

        var planned = new List<PlannedStage>();
        foreach (var spec in specs)
        {
            var stage = catalog.Get(spec.Name);
            if (planned.Any(p => p.Name == spec.Name))
                throw new FlowDefinitionException($"flow {flow.Name}: stage '{spec.Name}' appears twice");

            var given = new Dictionary<string, object>(spec.Settings, StringComparer.Ordinal);
            var memberGiven = spec.Members.ToDictionary(m => m.Name,
                m => new Dictionary<string, object>(m.Settings, StringComparer.Ordinal), StringComparer.Ordinal);
            foreach (var (key, value) in stageOverrides.Where(kv => kv.Key.StartsWith(spec.Name + ".", StringComparison.Ordinal)))
            {
                var rest = key[(spec.Name.Length + 1)..];
                var dot = rest.IndexOf('.');
                if (dot > 0 && memberGiven.TryGetValue(rest[..dot], out var m)) m[rest[(dot + 1)..]] = value;
                else if (dot > 0)
                    throw new FlowDefinitionException(
                        $"--set {key}: stage {spec.Name} has no member '{rest[..dot]}'; members: {string.Join(", ", spec.Members.Select(x => x.Name))}");
                else given[rest] = value;
            }

            var settings = new StageSettings($"stage {spec.Name}", stage.Parameters, given);
            var members = spec.Members
                .Select(m => (m, new StageSettings($"stage {spec.Name}, member {m.Name}", stage.MemberParameters, memberGiven[m.Name])))
                .ToList();
            if (members.Select(m => m.m.Name).Distinct().Count() != members.Count)
                throw new FlowDefinitionException($"stage {spec.Name}: member names must be unique");

            var upstream = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var u in stage.Upstream)
            {
                if (stage.UpstreamOptional && !planned.Any(p => p.Name == u)) continue;
                var up = planned.FirstOrDefault(p => p.Name == u)
                    ?? throw new FlowDefinitionException(
                        $"flow {flow.Name}: stage '{spec.Name}' needs stage '{u}' before it");
                upstream[u] = up.Fingerprint;
            }

            var inputs = stage.InputFiles(settings).Select(hasher.Hash).ToList();
            var material = JsonSerializer.Serialize(new
            {
                stage = stage.Name,
                version = stage.CodeVersion,
                settings = settings.Canonical(),
                members = members.Select(m => new { name = m.m.Name, model = m.m.Model, settings = m.Item2.Canonical() }),
                upstream,
                inputs = inputs.Select(i => i.Sha256),
            });
            planned.Add(new PlannedStage(stage, settings, members, inputs, upstream, Hashing.Sha256Hex(material)));
        }
        return planned;
    }
}

using System.Text.Json;
using System.Text.RegularExpressions;
using Fer.Flow.Cache;

namespace Fer.Flow.Pipeline;

/// <summary>A node with everything resolved: its bound settings, its producers, its input files and its fingerprint.</summary>
public sealed record PlannedNode(NodeSpec Spec, object Settings, IReadOnlyList<string> Producers,
    IReadOnlyList<ManifestInput> InputFiles, string Fingerprint)
{
    public string Name => Spec.Name;
    public IStageDefinition Stage => Spec.Stage;
    public string Kind => Spec.Stage.Kind;
}

/// <summary>A flow's nodes in dependency order (ties broken by name, so the script's order never matters).</summary>
public sealed class FlowPlan(IReadOnlyList<PlannedNode> nodes)
{
    public IReadOnlyList<PlannedNode> Nodes { get; } = nodes;

    public PlannedNode? Find(string name) => Nodes.FirstOrDefault(n => n.Name == name);

    /// <summary>A node by name, or every node of a group (--only train: every member).</summary>
    public IReadOnlyList<PlannedNode> Select(string target, string option)
    {
        var matches = Nodes.Where(n => n.Name == target || n.Spec.Group == target).ToList();
        return matches.Count > 0 ? matches : throw new FlowDefinitionException(
            $"{option} {target}: the flow has no stage '{target}'; its stages: {string.Join(" ", Nodes.Select(n => n.Name))}");
    }

    /// <summary>The nodes these depend on, directly or not (not including them).</summary>
    public HashSet<string> UpstreamOf(IEnumerable<PlannedNode> targets)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>(targets.SelectMany(t => t.Producers));
        while (stack.Count > 0)
        {
            var name = stack.Pop();
            if (!result.Add(name)) continue;
            foreach (var p in Find(name)!.Producers) stack.Push(p);
        }
        return result;
    }

    /// <summary>These nodes and every node that depends on them.</summary>
    public HashSet<string> DownstreamOf(IEnumerable<PlannedNode> targets)
    {
        var result = targets.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var node in Nodes) // topological order: one pass suffices
            if (node.Producers.Any(result.Contains)) result.Add(node.Name);
        return result;
    }
}

/// <summary>
/// Builds the graph from the nodes' declared input ports and sorts it, then computes every fingerprint before
/// anything runs. A port binds to the nodes whose output type it accepts: the one producer (a node that both
/// takes and makes that type refines it, so `equalize` between augment and split needs no wiring), or all of them
/// for a join (the ensemble takes every member). A cycle, a missing producer, two producers for one input, or an
/// input no stage can make is a <see cref="FlowDefinitionException"/> naming the stages. A node's fingerprint
/// hashes its kind, code version, name, settings, its producers' fingerprints, the content of its input files
/// and, for script-defined stages and models, the script's content.
/// </summary>
public static partial class FlowPlanner
{
    /// <summary>Characters in a stage's or member's name: its figures are named visualize_MEMBER_guided_gradcam.png and such, under 255.</summary>
    public const int MaxNamePart = 64;

    [GeneratedRegex("^[A-Za-z0-9_-]+$")]
    private static partial Regex NamePart();

    public static FlowPlan Plan(FlowDefinition flow, IReadOnlyDictionary<string, string> overrides, InputFileHasher hasher)
    {
        var catalog = flow.Catalog;
        var specs = flow.Nodes;
        foreach (var spec in specs)
            if (spec.Name.Split('.').Any(part => part.Length > MaxNamePart))
                throw new FlowDefinitionException(
                    $"flow {flow.Name}: '{spec.Name[..Math.Min(spec.Name.Length, 40)]}...' is {spec.Name.Length} characters long; a stage or member name has at most {MaxNamePart} (names become parts of file names)");
            else if (spec.Name.Split('.').Any(part => !NamePart().IsMatch(part)))
                throw new FlowDefinitionException(
                    $"flow {flow.Name}: '{spec.Name}' is not a valid stage or member name: use only letters, digits, '_' and '-' (names become folder names)");
        foreach (var dup in specs.GroupBy(s => s.Name, StringComparer.Ordinal).Where(g => g.Count() > 1))
            throw new FlowDefinitionException($"flow {flow.Name}: two stages are named '{dup.Key}'; names must be unique");

        var given = specs.ToDictionary(s => s.Name, s => new Dictionary<string, object>(s.Settings, StringComparer.Ordinal), StringComparer.Ordinal);
        ApplyOverrides(flow, overrides, given);

        var scope = new PlanScope(flow.Models);
        var settings = specs.ToDictionary(s => s.Name, s => s.Stage.BindSettings(given[s.Name], $"stage {s.Name}", scope), StringComparer.Ordinal);
        var producers = specs.ToDictionary(s => s.Name, s => Bind(flow, s, specs, catalog), StringComparer.Ordinal);
        var order = Sort(flow, specs, producers);
        foreach (var spec in order)
            spec.Stage.CheckBound(settings[spec.Name],
                new BoundInputs([.. producers[spec.Name].Select(p => new BoundProducer(p, specs.First(s => s.Name == p).Stage.OutputType, settings[p]))], scope),
                $"stage {spec.Name}");

        var planned = new Dictionary<string, PlannedNode>(StringComparer.Ordinal);
        var result = new List<PlannedNode>();
        foreach (var spec in order)
        {
            var s = settings[spec.Name];
            var inputs = spec.Stage.InputFiles(s).Select(hasher.Hash).ToList();
            var material = JsonSerializer.Serialize(new
            {
                kind = spec.Stage.Kind,
                code = spec.Stage.CodeIdentity,
                node = spec.Name,
                settings = SettingsBinder.Canonical(s),
                inputs = producers[spec.Name].Select(p => new { node = p, fingerprint = planned[p].Fingerprint }),
                files = inputs.Select(i => i.Sha256),
                source = spec.Stage.SourceHash,
                extra = spec.Stage.ExtraFingerprint(s, scope),
            });
            var node = new PlannedNode(spec, s, producers[spec.Name], inputs, Hashing.Sha256Hex(material));
            planned[spec.Name] = node;
            result.Add(node);
        }
        return new FlowPlan(result);
    }

    /// <summary>--set node.key=value, group.key=value (every member of train) and train.member.key=value.</summary>
    private static void ApplyOverrides(FlowDefinition flow, IReadOnlyDictionary<string, string> overrides, Dictionary<string, Dictionary<string, object>> given)
    {
        foreach (var (key, value) in overrides)
        {
            var dot = key.LastIndexOf('.');
            if (dot <= 0 || dot == key.Length - 1) throw new FlowDefinitionException($"--set {key}: expected stage.setting=value");
            var target = key[..dot];
            var setting = key[(dot + 1)..];
            var nodes = flow.Nodes.Where(n => n.Name == target).ToList();
            if (nodes.Count == 0) nodes = flow.Nodes.Where(n => n.Group == target).ToList();
            if (nodes.Count == 0)
            {
                var group = target.Split('.')[0];
                var members = flow.Nodes.Where(n => n.Group == group).Select(n => n.Name).ToList();
                throw new FlowDefinitionException(members.Count > 0 && target.Contains('.')
                    ? $"--set {key}: stage {group} has no member '{target[(group.Length + 1)..]}'; members: {string.Join(", ", members.Select(m => m[(group.Length + 1)..]))}"
                    : $"--set {key}: flow {flow.Name} has no stage '{target}'; its stages: {string.Join(", ", flow.Nodes.Select(n => n.Name))}");
            }
            foreach (var n in nodes) given[n.Name][setting] = value;
        }
    }

    private static List<string> Bind(FlowDefinition flow, NodeSpec node, IReadOnlyList<NodeSpec> specs, StageCatalog catalog)
    {
        foreach (var f in node.From)
            if (!specs.Any(s => s.Name == f))
                throw new FlowDefinitionException($"stage {node.Name} takes its input from '{f}', which is not a stage of flow {flow.Name}");
        var bound = new List<string>();
        foreach (var port in node.Stage.Inputs)
        {
            var makers = specs.Where(s => s.Name != node.Name && port.Type.IsAssignableFrom(s.Stage.OutputType)).ToList();
            var chosen = makers.Where(m => node.From.Contains(m.Name)).ToList();
            if (chosen.Count == 0)
            {
                chosen = makers;
                if (!port.Many)
                {
                    // Stages that take and make this type refine it, in the order the script lists them (the one place
                    // script order counts): the first refines what the other stages make, each next one the refinement
                    // before it, and every other consumer takes the last refinement.
                    var refiners = specs.Where(s => Refines(s, port.Type)).ToList();
                    int at = refiners.IndexOf(node);
                    var before = at < 0 ? refiners : refiners.Take(at).ToList();
                    chosen = before.Count > 0 ? [before[^1]] : makers.Where(m => !refiners.Contains(m)).ToList();
                }
            }
            var typeName = port.Type.Name;
            if (chosen.Count == 0 && (port.Arity == PortArity.One || (port.Many && port.Arity == PortArity.All)))
            {
                var kinds = catalog.Producers(port.Type).ToList();
                throw new FlowDefinitionException(kinds.Count == 0
                    ? $"stage {node.Name} needs a {typeName}, which no stage can make"
                    : $"stage {node.Name} needs a {typeName}, made by {string.Join(" or ", kinds)}, but flow {flow.Name} has no such stage");
            }
            if (!port.Many && chosen.Count > 1)
                throw new FlowDefinitionException(
                    $"stage {node.Name} takes one {typeName}, but {string.Join(" and ", chosen.Select(c => c.Name))} both make one; say which with `from`");
            bound.AddRange(chosen.Select(c => c.Name).Order(StringComparer.Ordinal).Where(c => !bound.Contains(c)));
        }
        return bound;
    }

    /// <summary>Whether a stage takes one <paramref name="type"/> and makes one: it refines that type in place.</summary>
    private static bool Refines(NodeSpec stage, Type type) =>
        type.IsAssignableFrom(stage.Stage.OutputType) && stage.Stage.Inputs.Any(p => !p.Many && p.Type.IsAssignableFrom(type));

    /// <summary>Kahn's algorithm; among ready nodes the smallest name first, so every script order gives one plan.</summary>
    private static List<NodeSpec> Sort(FlowDefinition flow, IReadOnlyList<NodeSpec> specs, Dictionary<string, List<string>> producers)
    {
        var remaining = producers.ToDictionary(kv => kv.Key, kv => kv.Value.ToHashSet(StringComparer.Ordinal), StringComparer.Ordinal);
        var order = new List<NodeSpec>();
        var ready = new SortedSet<string>(remaining.Where(kv => kv.Value.Count == 0).Select(kv => kv.Key), StringComparer.Ordinal);
        while (ready.Count > 0)
        {
            var next = ready.Min!;
            ready.Remove(next);
            remaining.Remove(next);
            order.Add(specs.First(s => s.Name == next));
            foreach (var (name, deps) in remaining)
                if (deps.Remove(next) && deps.Count == 0) ready.Add(name);
        }
        if (remaining.Count > 0)
            throw new FlowDefinitionException($"flow {flow.Name} has a cycle: {string.Join(" -> ", FindCycle(remaining))}");
        return order;
    }

    private static List<string> FindCycle(Dictionary<string, HashSet<string>> remaining)
    {
        var path = new List<string>();
        var current = remaining.Keys.Order(StringComparer.Ordinal).First();
        while (!path.Contains(current))
        {
            path.Add(current);
            current = remaining[current].Order(StringComparer.Ordinal).First(remaining.ContainsKey);
        }
        var cycle = path.Skip(path.IndexOf(current)).ToList();
        cycle.Reverse(); // producers first: a -> b means b takes a's output
        var first = cycle.IndexOf(cycle.Min(StringComparer.Ordinal)!);
        cycle = [.. cycle.Skip(first), .. cycle.Take(first)];
        cycle.Add(cycle[0]);
        return cycle;
    }
}

using Fer.Flow.Pipeline;

namespace Fer.Flow.Cli;

/// <summary>--set name=value pairs, split into flow parameters (no dot) and stage settings (stage.name, stage.member.name).</summary>
public sealed record SetOptions(IReadOnlyDictionary<string, string> Flow, IReadOnlyDictionary<string, string> Stages)
{
    public static SetOptions Parse(IEnumerable<string> pairs)
    {
        var flow = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var stages = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            var eq = pair.IndexOf('=');
            if (eq <= 0)
                throw new FlowDefinitionException($"--set {pair}: expected name=value");
            var name = pair[..eq].Trim();
            var value = pair[(eq + 1)..];
            (name.Contains('.') ? stages : flow)[name] = value;
        }
        return new SetOptions(flow, stages);
    }
}

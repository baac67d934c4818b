using System.Collections.Concurrent;
using System.Reflection;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace Fer.Flow.Pipeline;

/// <summary>
/// Marks a record whose constructor parameters are a stage's input ports (C# or F#):
/// <c>record PredictInputs(SplitFaces Split, IReadOnlyList&lt;Produced&lt;TrainedMember&gt;&gt; Members) : IStageInputs</c>.
/// </summary>
public interface IStageInputs;

/// <summary>A stage that takes no input (ingest).</summary>
public sealed record NoInputs : IStageInputs;

/// <summary>On a join parameter: the stage also runs when no node makes that type (the report without members).</summary>
[AttributeUsage(AttributeTargets.Parameter)]
public sealed class MayBeEmptyAttribute : Attribute;

/// <summary>
/// A stage's input ports read from the type of its input, so the ports a stage declares and the inputs it reads are
/// one thing and cannot disagree. The input type is
/// <list type="bullet">
/// <item>a record marked <see cref="IStageInputs"/> or an F# tuple: one port per constructor parameter (tuple item);</item>
/// <item>any other type: one port.</item>
/// </list>
/// Each port's type says how it binds: <c>T</c> exactly one producer; <c>T?</c> (a nullable reference) or
/// <c>T option</c> at most one; <c>Produced&lt;T&gt;</c> one, with the producing node's name;
/// <c>IReadOnlyList&lt;Produced&lt;T&gt;&gt;</c>, <c>Produced&lt;T&gt;[]</c> or <c>Produced&lt;T&gt; list</c> every producer
/// (a join, at least one unless <see cref="MayBeEmptyAttribute"/>).
/// </summary>
public sealed class StagePorts
{
    private static readonly ConcurrentDictionary<Type, StagePorts> Known = new();
    private static readonly NullabilityInfoContext Nullability = new();

    private readonly ConstructorInfo? _constructor; // null: the input is the one port's value itself
    private readonly IReadOnlyList<Slot> _slots;

    private StagePorts(Type inputType, ConstructorInfo? constructor, IReadOnlyList<Slot> slots)
    {
        _constructor = constructor;
        _slots = slots;
        Ports = [.. slots.Select(s => s.Port)];
        for (int i = 0; i < slots.Count; i++)
            for (int j = i + 1; j < slots.Count; j++)
                if (slots[i].Port.Type.IsAssignableFrom(slots[j].Port.Type) || slots[j].Port.Type.IsAssignableFrom(slots[i].Port.Type))
                    throw new FlowDefinitionException(
                        $"input {TypeName(inputType)}: ports {slots[i].Name} and {slots[j].Name} both take a {TypeName(slots[i].Port.Type)}; make one a join (a list of Produced)");
    }

    /// <summary>The ports, in parameter order (the planner binds each to its producers).</summary>
    public IReadOnlyList<InputPort> Ports { get; }

    /// <summary>The ports of an input type (read once per type).</summary>
    public static StagePorts Of(Type inputType) => Known.GetOrAdd(inputType, Read);

    /// <summary>Builds the stage's input value from what its producers made.</summary>
    public object Fetch(IReadOnlyList<Produced<object>> upstream, string node)
    {
        var values = _slots.Select(s => s.Fetch(upstream.Where(u => s.Port.Type.IsInstanceOfType(u.Output)).ToList(), node)).ToArray();
        return _constructor is null ? values[0]! : _constructor.Invoke(values);
    }

    private static StagePorts Read(Type type)
    {
        if (typeof(IStageInputs).IsAssignableFrom(type))
        {
            var ctor = type.GetConstructors().OrderByDescending(c => c.GetParameters().Length).FirstOrDefault()
                ?? throw new FlowDefinitionException($"input {TypeName(type)} has no public constructor");
            return new StagePorts(type, ctor, [.. ctor.GetParameters().Select(p => Slot.For(p.ParameterType, p.Name ?? "?",
                p.GetCustomAttribute<MayBeEmptyAttribute>() is not null, Nullability.Create(p).ReadState == NullabilityState.Nullable))]);
        }
        if (type.IsGenericType && type.FullName!.StartsWith("System.Tuple`", StringComparison.Ordinal))
        {
            var items = type.GetGenericArguments();
            if (items.Length > 7) throw new FlowDefinitionException($"input {TypeName(type)}: at most 7 inputs in a tuple; use a record marked IStageInputs");
            var ctor = type.GetConstructor(items)!;
            return new StagePorts(type, ctor, [.. items.Select((t, i) => Slot.For(t, $"Item{i + 1}", mayBeEmpty: false, nullable: false))]);
        }
        return new StagePorts(type, null, [Slot.For(type, TypeName(type), mayBeEmpty: false, nullable: false)]);
    }

    internal static string TypeName(Type t) => t.IsGenericType ? $"{t.Name[..t.Name.IndexOf('`')]}<{string.Join(", ", t.GetGenericArguments().Select(TypeName))}>" : t.Name;

    /// <summary>One port: what it binds and how its value is made from the producers of its type.</summary>
    private sealed record Slot(string Name, InputPort Port, Func<List<Produced<object>>, string, object?> Fetch)
    {
        public static Slot For(Type type, string name, bool mayBeEmpty, bool nullable)
        {
            if (Element(type) is { } joined)
            {
                var produced = typeof(Produced<>).MakeGenericType(joined);
                Func<List<Produced<object>>, string, object?> fetch = type.IsArray
                    ? (found, _) => Typed(produced, found)
                    : type.GetGenericTypeDefinition() == typeof(FSharpList<>)
                        ? (found, _) => typeof(ListModule).GetMethod(nameof(ListModule.OfArray))!.MakeGenericMethod(produced).Invoke(null, [Typed(produced, found)])
                        : (found, _) => Typed(produced, found);
                return new Slot(name, new InputPort(joined, mayBeEmpty ? PortArity.Optional : PortArity.All) { Many = true }, fetch);
            }
            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(FSharpOption<>))
            {
                var inner = type.GetGenericArguments()[0];
                var some = type.GetMethod(nameof(FSharpOption<object>.Some))!;
                return new Slot(name, new InputPort(inner, PortArity.Optional), (found, _) => found.Count == 0 ? null : some.Invoke(null, [found[0].Output]));
            }
            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Produced<>))
            {
                var inner = type.GetGenericArguments()[0];
                return new Slot(name, new InputPort(inner, PortArity.One), (found, node) => Typed(type, [One(found, inner, node)]).GetValue(0));
            }
            if (type.IsValueType) throw new FlowDefinitionException($"input {name}: {TypeName(type)} is not a stage's output (outputs are records)");
            return nullable
                ? new Slot(name, new InputPort(type, PortArity.Optional), (found, _) => found.Count == 0 ? null : found[0].Output)
                : new Slot(name, new InputPort(type, PortArity.One), (found, node) => One(found, type, node).Output);
        }

        /// <summary>T of IReadOnlyList&lt;Produced&lt;T&gt;&gt;, Produced&lt;T&gt;[] or Produced&lt;T&gt; list; null for any other type.</summary>
        private static Type? Element(Type type)
        {
            Type? item = type.IsArray ? type.GetElementType()
                : type.IsGenericType && (type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>) || type.GetGenericTypeDefinition() == typeof(FSharpList<>))
                    ? type.GetGenericArguments()[0] : null;
            return item is { IsGenericType: true } && item.GetGenericTypeDefinition() == typeof(Produced<>) ? item.GetGenericArguments()[0] : null;
        }

        private static Produced<object> One(List<Produced<object>> found, Type type, string node) => found.Count > 0 ? found[0]
            : throw new InvalidOperationException($"node {node} received no {TypeName(type)}, which the planner bound"); // the planner guarantees it

        /// <summary>The producers as a Produced&lt;T&gt;[] of the port's own type.</summary>
        private static Array Typed(Type produced, List<Produced<object>> found)
        {
            var array = Array.CreateInstance(produced, found.Count);
            for (int i = 0; i < found.Count; i++) array.SetValue(Activator.CreateInstance(produced, found[i].Node, found[i].Output), i);
            return array;
        }
    }
}

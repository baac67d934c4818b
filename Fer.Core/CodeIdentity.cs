using System.Collections.Concurrent;
using System.Reflection;
using System.Reflection.Emit;
using System.Security.Cryptography;
using System.Text;

namespace Fer.Core;

/// <summary>
/// The identity of the code that computes something, taken from the code itself: a SHA-256 over the IL of a type's
/// methods (its nested, compiler-generated types included: lambdas, async state machines) and of every method of
/// Fer's assemblies they reach, transitively. Reached means called, created (every method of a created type, since
/// its overrides may run), passed as a delegate, used as a generic argument, or a type whose static state is read
/// (its static constructor). Metadata tokens are hashed as the full names of what they resolve to, so the identity
/// changes when that code changes, and not with build paths, module ids or members nobody reaches. A cache keyed by it
/// never serves a result made by other code; no version number has to be kept by hand.
/// </summary>
public static class CodeIdentity
{
    private static readonly ConcurrentDictionary<MemberInfo, string> Known = new();
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance |
                                          BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>The identity of a type's code and what it reaches in Fer (64 hex digits).</summary>
    public static string Of(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return Known.GetOrAdd(type, _ => Compute(MethodsOf(type), type.Assembly));
    }

    /// <summary>The identity of one method (a model factory's lambda) and what it reaches in Fer.</summary>
    public static string Of(MethodInfo method)
    {
        ArgumentNullException.ThrowIfNull(method);
        return Known.GetOrAdd(method, _ => Compute([method], method.Module.Assembly));
    }

    /// <summary>The methods a type's identity covers, by full name (what a reader checks it covers).</summary>
    public static IReadOnlyList<string> MethodsCovered(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return [.. Closure(MethodsOf(type), type.Assembly).Select(m => FactsOf(m).Name)];
    }

    private static string Compute(IEnumerable<MethodBase> roots, Assembly home)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var method in Closure(roots, home))
        {
            var facts = FactsOf(method);
            sha.AppendData(Encoding.UTF8.GetBytes("\n" + facts.Name + "\n"));
            sha.AppendData(facts.Digest);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>What one method's IL says, read once per process and shared by every identity that reaches it.</summary>
    private sealed record MethodFacts(string Name, byte[] Digest, List<MethodBase?> Methods, List<Type> Types);
    private static readonly ConcurrentDictionary<MethodBase, MethodFacts> Facts = new();

    private static MethodFacts FactsOf(MethodBase method) => Facts.GetOrAdd(method, m =>
    {
        var facts = new MethodFacts(Describe(m), [], [], []);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        HashBody(m, sha, facts.Methods.Add, facts.Types.Add);
        return facts with { Digest = sha.GetHashAndReset() };
    });

    /// <summary>Every method of Fer (or of <paramref name="home"/>) the roots reach, in a fixed order: by name.</summary>
    private static List<MethodBase> Closure(IEnumerable<MethodBase> roots, Assembly home)
    {
        var seen = new HashSet<MethodBase>();
        var pending = new Queue<MethodBase>();
        void Reach(MethodBase? m)
        {
            if (m is null) return;
            if (m is MethodInfo { IsGenericMethod: true, IsGenericMethodDefinition: false } generic) m = generic.GetGenericMethodDefinition();
            if (m.DeclaringType is { IsGenericType: true, IsGenericTypeDefinition: false } owner)
                m = MethodBase.GetMethodFromHandle(m.MethodHandle, owner.GetGenericTypeDefinition().TypeHandle) ?? m;
            if (!Followed(m.DeclaringType, home) || !seen.Add(m)) return;
            pending.Enqueue(m);
            Reach(m.DeclaringType?.TypeInitializer);
        }
        void ReachType(Type? t)
        {
            if (t is null) return;
            if (t.IsGenericType) foreach (var argument in t.GetGenericArguments()) ReachType(argument);
            if (t.HasElementType) { ReachType(t.GetElementType()); return; }
            if (t.IsGenericType && !t.IsGenericTypeDefinition) t = t.GetGenericTypeDefinition();
            if (!Followed(t, home)) return;
            foreach (var m in MethodsOf(t)) Reach(m);
        }
        foreach (var r in roots) Reach(r);
        while (pending.TryDequeue(out var method))
        {
            var facts = FactsOf(method);
            foreach (var m in facts.Methods) Reach(m);
            foreach (var t in facts.Types) ReachType(t);
        }
        return [.. seen.OrderBy(m => FactsOf(m).Name, StringComparer.Ordinal)];
    }

    private static bool Followed(Type? type, Assembly home) =>
        type is not null && (type.Assembly == home || type.Assembly.GetName().Name is "Fer.Core" or "Fer.Flow");

    /// <summary>Every method and constructor of a type and of its nested types (where lambdas and state machines live).</summary>
    private static IEnumerable<MethodBase> MethodsOf(Type type)
    {
        foreach (var m in type.GetMethods(Declared)) yield return m;
        foreach (var c in type.GetConstructors(Declared)) yield return c;
        foreach (var nested in type.GetNestedTypes(BindingFlags.Public | BindingFlags.NonPublic))
            foreach (var m in MethodsOf(nested)) yield return m;
    }

    private static string Describe(MemberInfo member) => member switch
    {
        Type t => t.FullName ?? t.Name,
        MethodBase m => $"{m.DeclaringType?.FullName}::{m}",
        FieldInfo f => $"{f.DeclaringType?.FullName}::{f.FieldType} {f.Name}",
        _ => $"{member.DeclaringType?.FullName}::{member}",
    };

    private static void HashBody(MethodBase method, IncrementalHash sha, Action<MethodBase?> reach, Action<Type> reachType)
    {
        byte[]? il;
        try { il = method.GetMethodBody()?.GetILAsByteArray(); }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or BadImageFormatException) { il = null; }
        if (il is null) return; // abstract, extern or runtime-provided: its signature was hashed with its name
        var module = method.Module;
        Type[]? typeArguments = method.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        Type[]? methodArguments = method is MethodInfo { IsGenericMethod: true } g ? g.GetGenericArguments() : null;
        int i = 0;
        while (i < il.Length)
        {
            short value = il[i] == 0xFE && i + 1 < il.Length ? (short)(0xFE00 | il[i + 1]) : il[i];
            if (!OpCodesByValue.TryGetValue(value, out var op)) { sha.AppendData(il.AsSpan(i)); return; } // not IL we know: hash the rest as it is
            i += op.Size;
            sha.AppendData(BitConverter.GetBytes(value));
            int operand = op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
            if (op.OperandType is OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok
                or OperandType.InlineString or OperandType.InlineSig)
            {
                int token = BitConverter.ToInt32(il, i);
                var resolved = Resolve(module, token, op.OperandType, typeArguments, methodArguments, reach, reachType);
                sha.AppendData(Encoding.UTF8.GetBytes(resolved));
            }
            else sha.AppendData(il.AsSpan(i, operand));
            i += operand;
        }
    }

    private static string Resolve(Module module, int token, OperandType kind, Type[]? typeArguments, Type[]? methodArguments,
        Action<MethodBase?> reach, Action<Type> reachType)
    {
        try
        {
            switch (kind)
            {
                case OperandType.InlineString: return "\"" + module.ResolveString(token) + "\"";
                case OperandType.InlineSig: return Convert.ToHexString(module.ResolveSignature(token));
            }
            var member = module.ResolveMember(token, typeArguments, methodArguments);
            switch (member)
            {
                case MethodBase m:
                    reach(m);
                    // A created type's overrides may run, so all its methods count; not so a compiler-generated
                    // closure class (<>c), whose lambdas are reached one by one where they are taken (ldftn).
                    if (m is ConstructorInfo { DeclaringType: { } created } && !created.IsDefined(typeof(System.Runtime.CompilerServices.CompilerGeneratedAttribute), false))
                        reachType(created);
                    if (m is MethodInfo { IsGenericMethod: true } g) foreach (var a in g.GetGenericArguments()) reachType(a);
                    if (m.DeclaringType is { IsGenericType: true } owner) foreach (var a in owner.GetGenericArguments()) reachType(a);
                    break;
                case FieldInfo f when f.IsStatic:
                    reach(f.DeclaringType?.TypeInitializer);
                    break;
                case Type t:
                    if (t.IsGenericType) foreach (var a in t.GetGenericArguments()) reachType(a);
                    break;
            }
            return member is null ? token.ToString("x8", System.Globalization.CultureInfo.InvariantCulture) : Describe(member);
        }
        catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException or MissingMemberException)
        {
            return "?" + token.ToString("x8", System.Globalization.CultureInfo.InvariantCulture); // unresolvable here: the raw token
        }
    }
}

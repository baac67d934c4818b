using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.Pipeline;

/// <summary>The planner builds the graph from the nodes' typed inputs; the runner runs its branches.</summary>
public class FlowGraphTests
{
    private static FlowDefinition Flow(params NodeSpec[] nodes) => new("graph", nodes) { Catalog = new StageCatalog(nodes.Select(n => n.Stage).DistinctBy(s => s.Kind)) };

    private static NodeSpec Node(string name, Type output, params InputPort[] inputs) => new(name, new FakeStage(name, output, inputs));

    private static FlowPlan Plan(FlowDefinition flow) => FlowPlanner.Plan(flow, new Dictionary<string, string>(), new Fer.Flow.Cache.InputFileHasher(Path.GetTempPath()));

    [Fact]
    public void ScriptOrderDoesNotChangeThePlan()
    {
        NodeSpec[] Nodes() => [Node("a", typeof(OutA)), Node("b", typeof(OutB), InputPort.One<OutA>()), Node("c", typeof(OutC), InputPort.One<OutA>()),
            Node("d", typeof(OutD), InputPort.One<OutB>(), InputPort.One<OutC>())];
        var ordered = Plan(Flow(Nodes()));
        var shuffled = Nodes();
        var reversed = Plan(Flow([shuffled[3], shuffled[1], shuffled[2], shuffled[0]]));
        Assert.Equal(["a", "b", "c", "d"], ordered.Nodes.Select(n => n.Name));
        Assert.Equal(ordered.Nodes.Select(n => (n.Name, n.Fingerprint, string.Join(",", n.Producers))),
            reversed.Nodes.Select(n => (n.Name, n.Fingerprint, string.Join(",", n.Producers))));
        Assert.Equal(["b", "c"], ordered.Find("d")!.Producers);
    }

    [Fact]
    public void ACycleIsAnErrorNamingItsStages()
    {
        var a = Node("a", typeof(OutA), InputPort.One<OutC>());
        var b = Node("b", typeof(OutB), InputPort.One<OutA>());
        var c = Node("c", typeof(OutC), InputPort.One<OutB>());
        var e = Assert.Throws<FlowDefinitionException>(() => Plan(Flow(a, b, c)));
        Assert.Equal("flow graph has a cycle: a -> b -> c -> a", e.Message);
    }

    [Fact]
    public void AMissingProducerNamesTheStageThatWouldMakeIt()
    {
        var catalog = new StageCatalog([new FakeStage("a", typeof(OutA)), new FakeStage("b", typeof(OutB), InputPort.One<OutA>())]);
        var flow = new FlowDefinition("graph", [new NodeSpec("b", catalog.Get("b"))]) { Catalog = catalog };
        Assert.Equal("stage b needs a OutA, made by a, but flow graph has no such stage", Assert.Throws<FlowDefinitionException>(() => Plan(flow)).Message);
        var orphan = Flow(Node("c", typeof(OutC), InputPort.One<OutD>()));
        Assert.Equal("stage c needs a OutD, which no stage can make", Assert.Throws<FlowDefinitionException>(() => Plan(orphan)).Message);
    }

    [Fact]
    public void TwoProducersOfOneInputAreAnErrorUntilTheScriptSaysWhich()
    {
        var x = Node("x", typeof(OutA));
        var y = Node("y", typeof(OutA));
        var b = Node("b", typeof(OutB), InputPort.One<OutA>());
        var e = Assert.Throws<FlowDefinitionException>(() => Plan(Flow(x, y, b)));
        Assert.Equal("stage b takes one OutA, but x and y both make one; say which with `from`", e.Message);
        b.From.Add("y");
        Assert.Equal(["y"], Plan(Flow(x, y, b)).Find("b")!.Producers);
    }

    [Fact]
    public void AStageThatTakesAndMakesOneTypeRefinesItForItsConsumers()
    {
        var a = Node("a", typeof(OutA));
        var refine = Node("refine", typeof(OutA), InputPort.One<OutA>());
        var b = Node("b", typeof(OutB), InputPort.One<OutA>());
        var plan = Plan(Flow(b, refine, a));
        Assert.Equal(["a", "refine", "b"], plan.Nodes.Select(n => n.Name));
        Assert.Equal(["refine"], plan.Find("b")!.Producers);
        Assert.Equal(["a"], plan.Find("refine")!.Producers);
    }

    /// <summary>Refining stages of one type apply in the order the script lists them, however many there are.</summary>
    [Fact]
    public void TwoRefiningStagesInARowChainInScriptOrder()
    {
        var a = Node("a", typeof(OutA));
        var first = Node("first", typeof(OutA), InputPort.One<OutA>());
        var second = Node("second", typeof(OutA), InputPort.One<OutA>());
        var b = Node("b", typeof(OutB), InputPort.One<OutA>());
        var plan = Plan(Flow(b, first, a, second));
        Assert.Equal(["a", "first", "second", "b"], plan.Nodes.Select(n => n.Name));
        Assert.Equal(["a"], plan.Find("first")!.Producers);
        Assert.Equal(["first"], plan.Find("second")!.Producers);
        Assert.Equal(["second"], plan.Find("b")!.Producers);
        var swapped = Plan(Flow(b, second, a, first));
        Assert.Equal(["second"], swapped.Find("first")!.Producers);
        Assert.Equal(["first"], swapped.Find("b")!.Producers);
    }

    [Fact]
    public void BadNamesAreRejectedBeforeAnythingRuns()
    {
        foreach (var name in new[] { "../x", "a b", "x/y", "" })
        {
            var e = Assert.Throws<FlowDefinitionException>(() => Plan(Flow(Node(name, typeof(OutA)))));
            Assert.Contains("only letters, digits, '_' and '-'", e.Message);
        }
        Assert.Contains("two stages are named 'a'", Assert.Throws<FlowDefinitionException>(() => Plan(Flow(Node("a", typeof(OutA)), Node("a", typeof(OutB))))).Message);
    }

    [Fact]
    public async Task AJoinWaitsForEveryBranchAndBranchesRunSideBySide()
    {
        using var dir = new TempDir();
        var probe = new ConcurrencyProbe();
        var root = new FakeStage("a", typeof(OutA));
        var member = new FakeStage("m", typeof(OutB), InputPort.One<OutA>()) { Delay = TimeSpan.FromMilliseconds(300), Probe = probe };
        var join = new FakeStage("j", typeof(OutC), InputPort.All<OutB>());
        var nodes = new[] { new NodeSpec("a", root), new NodeSpec("m.one", member) { Group = "m" }, new NodeSpec("m.two", member) { Group = "m" },
            new NodeSpec("m.three", member) { Group = "m" }, new NodeSpec("j", join) };
        var flow = new FlowDefinition("graph", nodes) { Catalog = new StageCatalog([root, member, join]) };
        var fake = new FakeFlow();
        var (runner, context, plan) = fake.Prepare(flow, parallel: 3);
        var results = await runner.RunAsync(plan);
        Assert.Equal(3, probe.MostAtOnce);
        Assert.Equal(["m.one", "m.three", "m.two"], plan.Find("j")!.Producers);
        Assert.Equal("j(1)<m.one(1)<a(1)<>>|m.three(1)<a(1)<>>|m.two(1)<a(1)<>>>", File.ReadAllText(((FakeOutput)results["j"].Output).Out.Path));

        var serial = new ConcurrencyProbe();
        member.Probe = serial;
        var (runner1, _, plan1) = fake.Prepare(flow, parallel: 1);
        await runner1.RunAsync(plan1, RunMode.From, "m");
        Assert.Equal(1, serial.MostAtOnce);
        Assert.Equal(["hit", "miss", "miss", "miss", "miss"], runner1.Reports.OrderBy(r => r.Stage == "a" ? 0 : r.Stage == "j" ? 2 : 1).Select(r => r.Status.Text()));

        // --only one member: it alone is recomputed; its producer is loaded from the cache.
        var (runner2, _, plan2) = fake.Prepare(flow);
        await runner2.RunAsync(plan2, RunMode.Only, "m.two");
        Assert.Equal(["a:hit", "m.two:miss"], runner2.Reports.Select(r => $"{r.Stage}:{r.Status.Text()}").Order());
        fake.Dispose();
    }

    [Fact]
    public async Task AFailingBranchStopsTheRunAndNamesItsStage()
    {
        var root = new FakeStage("a", typeof(OutA));
        var good = new FakeStage("good", typeof(OutB), InputPort.One<OutA>());
        var bad = new FakeStage("bad", typeof(OutC), InputPort.One<OutA>()) { Fail = new InvalidOperationException("boom") };
        var after = new FakeStage("after", typeof(OutD), InputPort.One<OutB>(), InputPort.One<OutC>());
        var flow = new FlowDefinition("graph", [new NodeSpec("a", root), new NodeSpec("good", good), new NodeSpec("bad", bad), new NodeSpec("after", after)])
            { Catalog = new StageCatalog([root, good, bad, after]) };
        using var fake = new FakeFlow();
        var (runner, _, plan) = fake.Prepare(flow);
        var e = await Assert.ThrowsAsync<StageFailedException>(() => runner.RunAsync(plan));
        Assert.Equal("bad", e.Stage);
        Assert.Equal(0, after.Runs);
    }
}

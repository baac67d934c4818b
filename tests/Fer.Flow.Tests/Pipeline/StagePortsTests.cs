using Fer.Flow.Pipeline;
using Fer.Flow.Scripting;
using Fer.Flow.Stages;

namespace Fer.Flow.Tests.Pipeline;

public sealed record ThreePorts(OutA A, OutB? B, IReadOnlyList<Produced<OutC>> Cs) : IStageInputs;
public sealed record TwoOfOneType(OutA First, OutA Second) : IStageInputs;
public sealed record ReportLike([MayBeEmpty] IReadOnlyList<Produced<OutC>> Cs, Produced<OutA> A) : IStageInputs;

public class StagePortsTests
{
    private static DataFile File(string name) => new($"/nowhere/{name}");
    private static Produced<object> Made(string node, FakeOutput output) => new(node, output);

    [Fact]
    public void ARecordsParametersAreItsPortsAndItsValueIsBuiltFromWhatTheirProducersMade()
    {
        var ports = StagePorts.Of(typeof(ThreePorts));
        Assert.Equal([(typeof(OutA), PortArity.One, false), (typeof(OutB), PortArity.Optional, false), (typeof(OutC), PortArity.All, true)],
            ports.Ports.Select(p => (p.Type, p.Arity, p.Many)));

        var a = new OutA(File("a")) { Metrics = new("a", 1) };
        var c1 = new OutC(File("c1")) { Metrics = new("c1", 1) };
        var c2 = new OutC(File("c2")) { Metrics = new("c2", 2) };
        var value = (ThreePorts)ports.Fetch([Made("c.1", c1), Made("a", a), Made("c.2", c2)], "node");
        Assert.Same(a, value.A);
        Assert.Null(value.B); // an optional port nobody makes
        Assert.Equal(["c.1", "c.2"], value.Cs.Select(c => c.Node));
        Assert.Same(c2, value.Cs[1].Output);
    }

    [Fact]
    public void AJoinThatMayBeEmptyAndAProducedPortKeepTheProducersName()
    {
        var ports = StagePorts.Of(typeof(ReportLike));
        Assert.Equal([(typeof(OutC), PortArity.Optional, true), (typeof(OutA), PortArity.One, false)], ports.Ports.Select(p => (p.Type, p.Arity, p.Many)));
        var a = new OutA(File("a")) { Metrics = new("a", 1) };
        var value = (ReportLike)ports.Fetch([Made("maker", a)], "node");
        Assert.Empty(value.Cs);
        Assert.Equal("maker", value.A.Node);
    }

    [Fact]
    public void TwoPortsOfOneTypeAreAnErrorThatSaysHowToJoinThem()
    {
        var e = Assert.Throws<FlowDefinitionException>(() => StagePorts.Of(typeof(TwoOfOneType)));
        Assert.Contains("ports First and Second both take a OutA", e.Message);
    }

    [Fact]
    public void AnFSharpTupleIsOnePortPerItemAndAnOptionIsOptional()
    {
        var type = typeof(Tuple<OutA, Microsoft.FSharp.Core.FSharpOption<OutB>, Produced<OutC>[]>);
        var ports = StagePorts.Of(type);
        Assert.Equal([(typeof(OutA), PortArity.One), (typeof(OutB), PortArity.Optional), (typeof(OutC), PortArity.All)], ports.Ports.Select(p => (p.Type, p.Arity)));
        var a = new OutA(File("a")) { Metrics = new("a", 1) };
        var b = new OutB(File("b")) { Metrics = new("b", 1) };
        var value = (Tuple<OutA, Microsoft.FSharp.Core.FSharpOption<OutB>, Produced<OutC>[]>)ports.Fetch([Made("b", b), Made("a", a)], "node");
        Assert.Same(a, value.Item1);
        Assert.Same(b, value.Item2.Value);
        Assert.Empty(value.Item3);
    }

    [Fact]
    public void BuiltInStagesPortsComeFromTheirInputRecords()
    {
        var catalog = StageCatalog.Default;
        Assert.Empty(catalog.Get("ingest").Inputs);
        Assert.Equal([typeof(SplitFaces), typeof(TrainedMember), typeof(RawFaces)], catalog.Get("visualize").Inputs.Select(p => p.Type));
        Assert.Equal([PortArity.One, PortArity.All, PortArity.Optional], catalog.Get("visualize").Inputs.Select(p => p.Arity));
        var report = catalog.Get("report").Inputs;
        Assert.All(report, p => Assert.Equal(PortArity.Optional, p.Arity)); // the report is written from whatever the flow makes
        Assert.True(report.Single(p => p.Type == typeof(TrainedMember)).Many);
    }

    [Fact]
    public async Task AScriptStageTakesSeveralTypedInputsAsATuple()
    {
        using var fake = new FakeFlow();
        var script = fake.Dir["tuple.fsx"];
        System.IO.File.WriteAllText(script, $$"""
            #load @"{{Repo.Flow("Fer.fsx")}}"
            open Fer
            open Fer.Flow.Pipeline
            open Fer.Flow.Stages

            type CountSettings = { Extra: int }
            type FaceCounts = { Faces: int64; Valid: int64; Raw: int }

            let counts =
                defineStage "counts" { Extra = 0 } (fun ctx s (split: SplitFaces, raw: RawFaces option, faces: TrainingFaces) ->
                    let rows = faces.Faces.ReadAsync(ctx.CancellationToken).Result.Count
                    { Faces = int64 rows + int64 s.Extra; Valid = split.Metrics.Valid
                      Raw = (match raw with Some r -> Seq.sum r.Metrics.ClassCounts | None -> -1) })

            flow "tuple" [
                ingest  [ "count" => 70; "seed" => 3 ]
                augment [ "flip" => true ]
                split   [ "valid_fraction" => 0.2; "seed" => 3 ]
                counts  [ "extra" => 1 ]
            ]
            """);
        var flow = FlowScriptHost.Load(script, new Dictionary<string, string>());
        Assert.Equal([typeof(SplitFaces), typeof(RawFaces), typeof(TrainingFaces)], flow.Catalog.Get("counts").Inputs.Select(p => p.Type));
        var (runner, _, plan) = fake.Prepare(flow);
        var results = await runner.RunAsync(plan);
        dynamic counts = results["counts"].Output;
        var split = (SplitFaces)results["split"].Output;
        var augmented = await ((TrainingFaces)results["augment"].Output).Faces.ReadAsync();
        Assert.Equal(augmented.Count + 1L, (long)counts.Faces);
        Assert.Equal(split.Metrics.Valid, (long)counts.Valid);
        Assert.Equal(70, (int)counts.Raw); // the optional input was bound: ingest made one
    }
}

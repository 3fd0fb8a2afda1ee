"""The routed projector and the routing scores."""

from __future__ import annotations

import pytest
import torch

from mcit.methods.components.routing import RoutedProjector, route_scores


def scaled(factor: float) -> torch.nn.Module:
    layer = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2) * factor)
    return layer


@torch.no_grad()
def test_each_image_goes_to_its_routed_projector():
    routed = RoutedProjector([scaled(1.0), scaled(10.0), scaled(100.0)], default=1)
    features = torch.ones(4, 5, 2)  # four images, five patches each
    assert torch.equal(routed(features), features * 10), "no route: everything to the default"
    routed.route = [2, 0, 2, 1]
    out = routed(features)
    assert [float(out[i, 0, 0]) for i in range(4)] == [100.0, 1.0, 100.0, 10.0]
    routed.route = [0, 0, 0, 0]
    assert torch.equal(routed(features), features)
    routed.route = [0, 1]
    with pytest.raises(RuntimeError, match="4 images but a route for 2"):
        routed(features)


def test_parameter_names_depend_only_on_the_count():
    names = [n for n, _ in RoutedProjector([scaled(1.0), scaled(2.0)]).named_parameters()]
    assert names == ["experts.0.weight", "experts.1.weight"]


def test_scores_average_the_cosines_of_the_parts_a_sample_has():
    keys = [{"image": torch.tensor([1.0, 0.0]), "text": torch.tensor([0.0, 1.0])},
            {"image": torch.tensor([0.0, 1.0]), "text": torch.tensor([1.0, 0.0])}]
    image = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    text = torch.tensor([[0.0, 1.0], [0.0, 3.0]])
    has_image = torch.tensor([True, False])
    scores = route_scores(image, text, has_image, keys)
    assert scores.tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert route_scores(None, text, torch.tensor([False, False]), keys)[:, 0].tolist() == [1.0, 1.0]

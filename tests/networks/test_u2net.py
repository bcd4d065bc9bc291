from __future__ import annotations

import io
import unittest
import warnings

import torch
from monai.bundle import ConfigParser
from monai.losses import DeepSupervisionLoss, DiceCELoss
from parameterized import parameterized

from monaicxr.networks import U2NET_CONFIGS, RSUBlock, U2Net

# (config, in_channels, paper value, exact count of the official implementation, github.com/xuebinqin/U-2-Net)
PARAM_COUNT_CASES = [
    ("full", 3, 44.0e6, 44_009_869),
    ("small", 3, 1.13e6, 1_131_181),
]

# (in_channels, out_channels, spatial size)
SHAPE_CASES = [
    (1, 1, (64, 64)),
    (1, 1, (63, 71)),
    (1, 2, (33, 40)),
    (3, 1, (17, 23)),
]

# (spatial_dims, height, dilated, spatial size)
RSU_CASES = [
    (2, 7, False, (63, 71)),
    (2, 4, False, (20, 21)),
    (2, 2, False, (9, 8)),
    (2, 4, True, (15, 17)),
    (3, 4, False, (9, 10, 11)),
    (3, 4, True, (5, 6, 7)),
]

TINY_3D = {"encoder": [[2, 4]] * 6, "decoder": [[2, 4]] * 5}


def _small(**kwargs) -> U2Net:
    torch.manual_seed(0)
    return U2Net(spatial_dims=2, in_channels=kwargs.pop("in_channels", 1), config="small", **kwargs)


class TestRSUBlock(unittest.TestCase):
    @parameterized.expand(RSU_CASES)
    def test_shape(self, spatial_dims, height, dilated, size):
        block = RSUBlock(spatial_dims, 2, 4, 6, height, dilated=dilated).eval()
        with torch.no_grad():
            out = block(torch.rand(1, 2, *size))
        self.assertEqual(tuple(out.shape), (1, 6, *size))

    def test_dilations(self):
        block = RSUBlock(2, 3, 4, 5, height=4, dilated=True)
        dilations = [m.conv.dilation[0] for m in (*block.encoder, block.bottom, *block.decoder)]
        self.assertEqual(dilations, [1, 2, 4, 8, 4, 2, 1])
        block = RSUBlock(2, 3, 4, 5, height=4)
        dilations = [m.conv.dilation[0] for m in (*block.encoder, block.bottom, *block.decoder)]
        self.assertEqual(dilations, [1, 1, 1, 2, 1, 1, 1])

    def test_bad_height(self):
        with self.assertRaises(ValueError):
            RSUBlock(2, 1, 4, 4, height=1)


class TestU2Net(unittest.TestCase):
    @parameterized.expand(PARAM_COUNT_CASES)
    def test_param_count(self, config, in_channels, paper, official):
        n = sum(p.numel() for p in U2Net(2, in_channels, 1, config=config).parameters())
        self.assertLess(abs(n - paper) / paper, 0.01)
        self.assertEqual(n, official)

    @parameterized.expand(SHAPE_CASES)
    def test_eval_shape(self, in_channels, out_channels, size):
        net = _small(in_channels=in_channels, out_channels=out_channels).eval()
        with torch.no_grad():
            out = net(torch.rand(2, in_channels, *size))
        self.assertIsInstance(out, torch.Tensor)
        self.assertEqual(tuple(out.shape), (2, out_channels, *size))

    def test_training_outputs(self):
        net = _small().train()
        outs = net(torch.rand(2, 1, 33, 37))
        self.assertIsInstance(outs, list)
        self.assertEqual(len(outs), 7)
        for out in outs:
            self.assertEqual(tuple(out.shape), (2, 1, 33, 37))
        net.deep_supervision = False
        self.assertIsInstance(net(torch.rand(2, 1, 32, 32)), torch.Tensor)

    def test_full_forward(self):
        net = U2Net(2, 1, 1, config="full").eval()
        with torch.no_grad():
            out = net(torch.rand(1, 1, 32, 32))
        self.assertEqual(tuple(out.shape), (1, 1, 32, 32))

    def test_backward_all_params(self):
        net = _small().train()
        loss = sum(o.mean() for o in net(torch.rand(2, 1, 32, 32)))
        loss.backward()
        missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
        self.assertEqual(missing, [])

    def test_multitask(self):
        net = _small(num_classes=3, dropout=0.2).train()
        seg, logits = net(torch.rand(2, 1, 32, 36))
        self.assertEqual(len(seg), 7)
        self.assertEqual(tuple(logits.shape), (2, 3))
        (sum(o.mean() for o in seg) + logits.sum()).backward()
        self.assertTrue(all(p.grad is not None for p in net.parameters()))
        net.eval()
        with torch.no_grad():
            seg, logits = net(torch.rand(2, 1, 32, 36))
        self.assertEqual(tuple(seg.shape), (2, 1, 32, 36))
        self.assertEqual(tuple(logits.shape), (2, 3))

    def test_deep_supervision_loss(self):
        net = _small().train()
        target = (torch.rand(2, 1, 33, 35) > 0.5).float()
        loss = DeepSupervisionLoss(DiceCELoss(sigmoid=True), weight_mode="same")(net(torch.rand(2, 1, 33, 35)), target)
        self.assertTrue(torch.isfinite(loss))
        loss.backward()

    def test_torchscript(self):
        net = _small(num_classes=2).eval()
        x = torch.rand(1, 1, 33, 40)
        with warnings.catch_warnings():  # torch.jit.script is deprecated in favour of torch.export
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.script(net)
        with torch.no_grad():
            (seg, logits), (seg_s, logits_s) = net(x), scripted(x)
        torch.testing.assert_close(seg_s, seg)
        torch.testing.assert_close(logits_s, logits)

    def test_export(self):
        net = _small(num_classes=2).eval()
        x = torch.rand(1, 1, 33, 40)
        exported = torch.export.export(net, (x,)).module()
        with torch.no_grad():
            (seg, logits), (seg_e, logits_e) = net(x), exported(x)
        torch.testing.assert_close(seg_e, seg)
        torch.testing.assert_close(logits_e, logits)

    def test_state_dict_round_trip(self):
        net = _small().eval()
        buffer = io.BytesIO()
        torch.save(net.state_dict(), buffer)
        buffer.seek(0)
        other = U2Net(2, 1, 1, config="small").eval()
        other.load_state_dict(torch.load(buffer, weights_only=True))
        x = torch.rand(1, 1, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(other(x), net(x))

    def test_bundle_config(self):
        parser = ConfigParser(
            {
                "net": {
                    "_target_": "monaicxr.networks.nets.U2Net",
                    "spatial_dims": 3,
                    "in_channels": 1,
                    "out_channels": 2,
                    "config": TINY_3D,
                    "norm": ["instance", {"affine": True}],
                    "act": ["leakyrelu", {"negative_slope": 0.1}],
                }
            }
        )
        net = parser.get_parsed_content("net").eval()
        with torch.no_grad():  # instance norm needs more than one voxel at En_6 (1/32 of the input size)
            out = net(torch.rand(1, 1, 40, 9, 7))
        self.assertEqual(tuple(out.shape), (1, 2, 40, 9, 7))

    def test_bad_config(self):
        with self.assertRaisesRegex(ValueError, "full.*small"):
            U2Net(config="tiny")
        with self.assertRaises(ValueError):
            U2Net(config={"encoder": [[16, 64]] * 5, "decoder": [[16, 64]] * 5})
        with self.assertRaises(ValueError):
            U2Net(config={"encoder": [[16, 64]] * 6})
        self.assertEqual(sorted(U2NET_CONFIGS), ["full", "small"])


if __name__ == "__main__":
    unittest.main()

"""distillers of mmrazor."""
from .base import BaseDistiller
from .byot_distiller import BYOTDistiller
from .byot_connector import BYOTConnector
from .configurable_distiller import ConfigurableDistiller
from .connectors import BaseConnector, ConvModuleConnector
from .crd_connector import CRDConnector
from .factor_transfer_connectors import Paraphraser, Translator
from .fbkd_connectors import FBKDStudentConnector, FBKDTeacherConnector
from .mgd_connector import MGDConnector
from .ofd_connector import OFDTeacherConnector, ofd_margin
from .ofd_distiller import OFDDistiller
from .self_distiller import SelfDistiller
from .single_teacher import SingleTeacherDistiller
from .torch_connectors import TorchFunctionalConnector, TorchNNConnector

__all__ = [
    'BaseDistiller', 'SingleTeacherDistiller', 'SelfDistiller',
    'ConfigurableDistiller', 'BaseConnector', 'ConvModuleConnector',
    'BYOTConnector', 'CRDConnector', 'Paraphraser', 'Translator',
    'FBKDStudentConnector', 'FBKDTeacherConnector', 'MGDConnector',
    'OFDTeacherConnector', 'ofd_margin', 'TorchFunctionalConnector',
    'TorchNNConnector', 'BYOTDistiller', 'OFDDistiller'
]
